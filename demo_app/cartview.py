"""The cart as the shop's pages show it: lines joined with the catalogue, Decimal money."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from .models import Product, db

CENT = Decimal("0.01")


def money(value: Decimal | int | str) -> str:
    return f"${Decimal(value).quantize(CENT):,}"


@dataclass
class Line:
    product_id: str
    name: str
    quantity: int
    unit_price: Decimal  # what it costs now (the catalogue's price)
    cart_price: Decimal  # the price when it was put in the cart
    emoji: str = ""
    stock: int | None = None  # None: the product left the catalogue

    @property
    def available(self) -> bool:
        return self.stock is not None and self.stock > 0

    @property
    def price_changed(self) -> bool:
        return self.stock is not None and self.unit_price != self.cart_price

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
            if line.stock is None:
                found.append(f"{line.name} is no longer sold; remove it to check out.")
            elif line.stock == 0:
                found.append(f"{line.name} is out of stock; remove it to check out.")
            elif line.over_stock:
                found.append(
                    f"Only {line.stock} of {line.name} left in stock; "
                    f"you have {line.quantity} in your cart."
                )
        return found

    @property
    def price_changes(self) -> list[str]:
        return [
            f"The price of {line.name} changed from {money(line.cart_price)} "
            f"to {money(line.unit_price)}."
            for line in self.lines
            if line.price_changed
        ]


def build(items: Mapping[str, Mapping[str, Any]]) -> CartView:
    """A CartView of `Cart.get()`-style items (product id -> details), in cart order."""
    products = {}
    if items:
        rows = db.session.scalars(sa.select(Product).where(Product.id.in_(list(items))))
        products = {product.id: product for product in rows}
    lines = []
    for product_id, details in items.items():
        cart_price = Decimal(str(details.get("unit_cost", "0")))
        product = products.get(product_id)
        lines.append(
            Line(
                product_id=product_id,
                name=product.name if product else str(details.get("name") or product_id),
                quantity=int(details.get("quantity", 0)),
                unit_price=product.price if product else cart_price,
                cart_price=cart_price,
                emoji=product.emoji if product else "",
                stock=product.stock if product else None,
            )
        )
    return CartView(lines)
