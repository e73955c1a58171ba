"""Products as the app's `product_loader` describes them, and re-pricing cart lines.

A loader that raises or gives unusable data (a NaN or negative price, a float stock) is
the shop's bug: it is logged on the "flask_cart" logger, the product cannot be added, and
a line already in a cart shows ``available: false`` with a reason instead of a 500.
Text from the loader (`name`, string CART_LINE_FIELDS) is made valid Unicode here (a lone
surrogate becomes "?"), so stores, cookies and JSON only ever get encodable text.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import CartError, ProductUnavailable
from .lines import MAX_PRICE_PLACES, MAX_UNIT_COST, CartState, make_line, parse_money, with_lines
from .money import DEFAULT_MINOR_DIGITS, from_minor

if TYPE_CHECKING:
    from .config import Settings

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
    #: The CART_LINE_FIELDS as the loader gave them (JSON-safe; None where unusable).
    fields: Mapping[str, Any] | None = None


def clean_text(text: str) -> str:
    """`text` as valid Unicode: what UTF-8 cannot encode (a lone surrogate) becomes "?"."""
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


#: (field, type name) pairs already logged as unusable: each is logged once per process.
_logged_fields: set[tuple[str, str]] = set()


def field_value(product_id: str, name: str, value: Any) -> Any:
    """A CART_LINE_FIELDS value as the line can carry it: str (made valid), int, bool, None,
    a finite float, a Decimal as text; anything else is None (logged once)."""
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, str):
        return clean_text(str(value))
    if isinstance(value, float) and math.isfinite(value):
        return float(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if (name, kind.__name__) not in _logged_fields:
        _logged_fields.add((name, kind.__name__))
        log.warning(
            "flask-cart: product_loader(%r) gave %s = %r, which a cart line cannot carry "
            "(str, int, bool, None, a finite float or a Decimal): shown as None",
            product_id,
            name,
            value,
        )
    return None


def as_product(
    product_id: str,
    value: Any,
    *,
    minor_digits: int = DEFAULT_MINOR_DIGITS,
    line_fields: tuple[str, ...] = (),
) -> Product | None:
    """A loader's answer (None, a mapping, or an object with attributes) as a Product.

    The price is `unit_cost` (major units: Decimal, str or int) or `unit_cost_minor` (an
    int of the currency's minor units, `minor_digits` of them to the major unit)."""
    if value is None:
        return None
    if type(value) is dict and not line_fields:
        plain = _plain_product(value)
        if plain is not None:
            return plain
    # A dict (the common case) skips the slower Mapping ABC check.
    if type(value) is dict or isinstance(value, Mapping):
        get = value.get
    else:

        def get(name: str, default: Any = None) -> Any:
            return getattr(value, name, default)

    unit_cost = _price(product_id, get("unit_cost"), get("unit_cost_minor"), minor_digits)
    name = get("name")
    stock = get("stock")
    if stock is not None and (isinstance(stock, bool) or not isinstance(stock, int)):
        raise TypeError(f"product_loader({product_id!r}) gave a non-integer stock: {stock!r}")
    fields = (
        {field: field_value(product_id, field, get(field)) for field in line_fields}
        if line_fields
        else None
    )
    return _product(unit_cost, None if name is None else clean_text(str(name)), stock, fields)


def _plain_product(value: dict[str, Any]) -> Product | None:
    """The usual answer, a dict with a Decimal `unit_cost` (no `unit_cost_minor`), an ASCII
    str or no `name` and an int or no `stock`, as a Product in one pass; None for anything
    else (as_product then checks it field by field)."""
    get = value.get
    price = get("unit_cost")
    if type(price) is not Decimal or "unit_cost_minor" in value:
        return None
    name = get("name")
    stock = get("stock")
    if not (name is None or (type(name) is str and name.isascii())):
        return None
    if not (stock is None or type(stock) is int):
        return None
    if not price.is_finite() or price.is_zero() or price < 0 or price > MAX_UNIT_COST:
        return None  # zero ("-0.00" is "0.00") and the refusals: field by field
    text = format(price, "f")  # as many digits after the point as the exponent says
    dot = text.find(".")
    if dot >= 0 and len(text) - dot - 1 > MAX_PRICE_PLACES:
        return None
    return _product(price, name, stock)


def _price(product_id: str, major: Any, minor: Any, digits: int) -> Decimal:
    """The price from `unit_cost` (major units) or `unit_cost_minor` (minor units); both
    given must agree. TypeError for unusable data."""
    try:
        if minor is not None:
            try:
                amount = parse_money(from_minor(minor, digits))
            except TypeError as exc:
                raise TypeError(f"product_loader({product_id!r}) gave a bad price: {exc}") from None
            if major is not None and parse_money(major) != amount:
                raise TypeError(
                    f"product_loader({product_id!r}) gave unit_cost {major!r} and "
                    f"unit_cost_minor {minor!r}, which disagree"
                )
            return amount
        return parse_money(major)
    except CartError as exc:
        raise TypeError(
            f"product_loader({product_id!r}) gave a bad unit_cost: {exc.message}"
        ) from None


def _product(
    unit_cost: Decimal,
    name: str | None,
    stock: int | None,
    fields: Mapping[str, Any] | None = None,
) -> Product:
    """``Product(...)`` without the frozen dataclass's init overhead."""
    product: Product = object.__new__(Product)
    product.__dict__.update(unit_cost=unit_cost, name=name, stock=stock, fields=fields)
    return product


@dataclass(frozen=True)
class Unavailable:
    """Why the catalogue cannot sell a product now: one of the reasons above."""

    reason: str


class Catalog:
    """The request's view of the product loader: each product is looked up once."""

    def __init__(self, loader: ProductLoader | None, settings: Settings | None = None) -> None:
        self.loader = loader
        self._seen: dict[str, Product | Unavailable] = {}
        self.minor_digits = DEFAULT_MINOR_DIGITS if settings is None else settings.minor_digits
        self.line_fields: tuple[str, ...] = () if settings is None else settings.line_fields

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

    def _load(self, loader: ProductLoader, product_id: str) -> Product | Unavailable:
        try:
            value = loader(product_id)
        except (LookupError, ValueError):
            return Unavailable(UNKNOWN_PRODUCT)
        except Exception:
            log.exception("flask-cart: product_loader(%r) raised", product_id)
            return Unavailable(LOADER_ERROR)
        try:
            product = as_product(
                product_id, value, minor_digits=self.minor_digits, line_fields=self.line_fields
            )
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
        seen, lookup, line_fields = self._seen, self.lookup, self.line_fields
        for product_id, line in state.lines.items():
            old = line.extra
            if "available" in old or "price_changed" in old or "unavailable_reason" in old:
                extra = {k: v for k, v in old.items() if k not in FLAGS}
            else:  # as a store answers lines: no flags to take out
                extra = dict(old)
            product = seen.get(product_id) or lookup(product_id)
            unit_cost = line.unit_cost
            if isinstance(product, Unavailable):
                extra.update(
                    price_changed=False, available=False, unavailable_reason=product.reason
                )
                for field in line_fields:
                    extra[field] = None
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
                if product.fields:
                    extra.update(product.fields)
            lines[product_id] = make_line(product_id, line.quantity, unit_cost, extra)
        return with_lines(state, lines)
