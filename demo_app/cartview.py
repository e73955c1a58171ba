"""The cart as the shop's pages show it: flask-cart's lines joined with the catalogue.

flask-cart re-prices every line it serves from the product loader: ``unit_cost`` is
today's price, ``price_changed`` says it moved since the line was added and
``available`` is False for a product the loader no longer knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from .models import Product, db, hue, monogram

CENT = Decimal("0.01")


def money(value: Decimal | int | str) -> str:
    return f"${Decimal(value).quantize(CENT):,}"


def units(quantity: int) -> str:
    """ "1 item", "2 items"."""
    return f"{quantity} item" if quantity == 1 else f"{quantity} items"


@dataclass
class Line:
    product_id: str
    name: str
    quantity: int
    unit_price: Decimal  # what it costs now
    available: bool = True  # False: the product left the catalogue
    price_changed: bool = False
    old_price: Decimal | None = None  # the price when it was put in the cart, if known
    stock: int | None = None

    @property
    def monogram(self) -> str:
        return monogram(self.name)

    @property
    def hue(self) -> int:
        return hue(self.product_id)

    @property
    def in_stock(self) -> bool:
        return self.available and (self.stock is None or self.stock > 0)

    @property
    def over_stock(self) -> bool:
        return self.stock is not None and 0 < self.stock < self.quantity

    @property
    def max_quantity(self) -> int:
        return max(self.stock or 0, self.quantity)

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity if self.available else Decimal(0)


@dataclass
class CartView:
    lines: list[Line] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal(0))

    @property
    def problems(self) -> list[str]:
        """What stands between this cart and an order, one sentence each."""
        found = []
        for line in self.lines:
            if not line.available:
                found.append(f"{line.name} is no longer sold; remove it to check out.")
            elif line.stock == 0:
                found.append(f"{line.name} is out of stock; remove it to check out.")
            elif line.over_stock:
                found.append(
                    f"Only {line.stock} of {line.name} left in stock; "
                    f"you have {line.quantity} in your cart."
                )
        return found


def price_change(line: Line) -> str:
    if line.old_price is None:
        return f"The price of {line.name} changed: it is now {money(line.unit_price)}."
    return (
        f"The price of {line.name} changed from {money(line.old_price)} "
        f"to {money(line.unit_price)}."
    )


def build(
    items: Mapping[str, Mapping[str, Any]], old_prices: Mapping[str, Decimal] | None = None
) -> CartView:
    """A CartView of `Cart.get()` items (product id -> details), in cart order."""
    products = {}
    if items:
        rows = db.session.scalars(sa.select(Product).where(Product.id.in_(list(items))))
        products = {product.id: product for product in rows}
    lines = []
    for product_id, details in items.items():
        product = products.get(product_id)
        unit_price = Decimal(str(details.get("unit_cost", "0")))
        changed = bool(details.get("price_changed", False))
        lines.append(
            Line(
                product_id=product_id,
                name=product.name if product else str(details.get("name") or product_id),
                quantity=int(details.get("quantity", 0)),
                unit_price=unit_price,
                available=product is not None and details.get("available", True) is not False,
                price_changed=changed,
                old_price=(old_prices or {}).get(product_id) if changed else None,
                stock=product.stock if product else None,
            )
        )
    return CartView(lines)
