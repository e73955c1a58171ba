"""Products as the app's `product_loader` describes them, and re-pricing cart lines.

A loader that raises or gives unusable data (a NaN or negative price, a float stock) is
the shop's bug: it is logged on the "flask_cart" logger, the product cannot be added, and
a line already in a cart shows ``available: false`` with a reason instead of a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import CartError, ProductUnavailable
from .lines import CartState, make_line, parse_money, with_lines

ProductLoader = Callable[[str], Any]
FLAGS = ("price_changed", "available", "unavailable_reason")
UNKNOWN_PRODUCT = "unknown_product"
BAD_PRODUCT_DATA = "bad_product_data"
LOADER_ERROR = "loader_error"

log = logging.getLogger("flask_cart")


@dataclass(frozen=True)
class Product:
    """What the cart needs to know about a product: its price now, name and stock."""

    unit_cost: Decimal
    name: str | None = None
    stock: int | None = None


def as_product(product_id: str, value: Any) -> Product | None:
    """A loader's answer (None, a mapping, or an object with attributes) as a Product."""
    if value is None:
        return None
    # A dict (the common case) skips the slower Mapping ABC check.
    if type(value) is dict or isinstance(value, Mapping):
        get = value.get
    else:

        def get(name: str, default: Any = None) -> Any:
            return getattr(value, name, default)

    try:
        unit_cost = parse_money(get("unit_cost"))
    except CartError as exc:
        raise TypeError(
            f"product_loader({product_id!r}) gave a bad unit_cost: {exc.message}"
        ) from None
    name = get("name")
    stock = get("stock")
    if stock is not None and (isinstance(stock, bool) or not isinstance(stock, int)):
        raise TypeError(f"product_loader({product_id!r}) gave a non-integer stock: {stock!r}")
    return _product(unit_cost, None if name is None else str(name), stock)


def _product(unit_cost: Decimal, name: str | None, stock: int | None) -> Product:
    """``Product(unit_cost, name, stock)`` without the frozen dataclass's init overhead."""
    product: Product = object.__new__(Product)
    product.__dict__.update(unit_cost=unit_cost, name=name, stock=stock)
    return product


@dataclass(frozen=True)
class Unavailable:
    """Why the catalogue cannot sell a product now: one of the reasons above."""

    reason: str


class Catalog:
    """The request's view of the product loader: each product is looked up once."""

    def __init__(self, loader: ProductLoader | None) -> None:
        self.loader = loader
        self._seen: dict[str, Product | Unavailable] = {}

    @property
    def available(self) -> bool:
        return self.loader is not None

    def get(self, product_id: str) -> Product | None:
        """The product, or None when the loader does not know it.

        A loader raising LookupError or ValueError (say, ``int(product_id)`` on "abc") is
        taken as "unknown product"; any other exception, or unusable data, raises
        ProductUnavailable (422).
        """
        entry = self.lookup(product_id)
        if isinstance(entry, Product):
            return entry
        if entry.reason == UNKNOWN_PRODUCT:
            return None
        raise ProductUnavailable(
            f"product {product_id!r} cannot be sold now: the catalogue could not describe it",
            product_id=product_id,
            reason=entry.reason,
        )

    def lookup(self, product_id: str) -> Product | Unavailable:
        """The product, or why it is unavailable (logged once per request); never raises."""
        if self.loader is None:
            raise RuntimeError(
                "flask-cart needs a product loader: decorate a function with "
                "@carts.product_loader (product_id -> None or an object with unit_cost)"
            )
        seen = self._seen.get(product_id)
        if seen is None:
            seen = self._seen[product_id] = self._load(self.loader, product_id)
        return seen

    @staticmethod
    def _load(loader: ProductLoader, product_id: str) -> Product | Unavailable:
        try:
            value = loader(product_id)
        except (LookupError, ValueError):
            return Unavailable(UNKNOWN_PRODUCT)
        except Exception:
            log.exception("flask-cart: product_loader(%r) raised", product_id)
            return Unavailable(LOADER_ERROR)
        try:
            product = as_product(product_id, value)
        except TypeError as exc:
            log.error("flask-cart: %s", exc)
            return Unavailable(BAD_PRODUCT_DATA)
        except Exception:
            log.exception("flask-cart: reading product_loader(%r)'s answer raised", product_id)
            return Unavailable(BAD_PRODUCT_DATA)
        return Unavailable(UNKNOWN_PRODUCT) if product is None else product

    def stock_caps(self, product_ids: Any) -> dict[str, int]:
        """Stock per product for the merge clamp (products without `stock` are not capped)."""
        caps = {}
        for product_id in product_ids:
            product = self.lookup(product_id)
            if isinstance(product, Product) and product.stock is not None:
                caps[product_id] = max(product.stock, 0)
        return caps

    def reprice(self, state: CartState) -> CartState:
        """Lines at today's prices: `price_changed` where the price moved, `available`
        False (price kept, left out of totals) with an `unavailable_reason` where the loader
        no longer knows the product, fails, or describes it with unusable data.
        Without a loader the state is returned as stored.
        """
        if self.loader is None or not state.lines:
            return state
        lines = {}
        seen, lookup = self._seen, self.lookup
        for product_id, line in state.lines.items():
            old = line.extra
            extra = {k: v for k, v in old.items() if k not in FLAGS} if old else {}
            product = seen.get(product_id) or lookup(product_id)
            unit_cost = line.unit_cost
            if isinstance(product, Unavailable):
                extra.update(
                    price_changed=False, available=False, unavailable_reason=product.reason
                )
            else:
                price = product.unit_cost
                unit_cost = format(price, "f")
                # Equal text is an equal price; else compare the amounts ("9.90" == "9.9").
                extra["price_changed"] = (
                    unit_cost != line.unit_cost and Decimal(line.unit_cost) != price
                )
                extra["available"] = True
                if product.name is not None:
                    extra["name"] = product.name
            lines[product_id] = make_line(product_id, line.quantity, unit_cost, extra)
        return with_lines(state, lines)
