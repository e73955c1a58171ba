"""The demo shop's tables: customers, the catalogue and orders (Flask-SQLAlchemy)."""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

Money = sa.Numeric(10, 2, asdecimal=True)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class User(UserMixin, db.Model):
    __tablename__ = "demo_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    orders: Mapped[list[Order]] = relationship(back_populates="user", order_by="Order.id.desc()")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class Product(db.Model):
    __tablename__ = "demo_product"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # the SKU
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    price: Mapped[Decimal] = mapped_column(Money)
    stock: Mapped[int] = mapped_column(default=0)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def monogram(self) -> str:
        return monogram(self.name)

    @property
    def hue(self) -> int:
        return hue(self.id)


def monogram(name: str) -> str:
    """Two letters standing in for a product picture ("Enamel mug" -> "EM")."""
    words = [word for word in name.replace("-", " ").split() if word[:1].isalnum()]
    return "".join(word[0] for word in words[:2]).upper() or "?"


def hue(product_id: str) -> int:
    """A colour per product (an HSL hue), stable across runs."""
    return zlib.crc32(product_id.encode()) % 360


class Order(db.Model):
    __tablename__ = "demo_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for a guest's order: the e-mail address it was placed with is all there is.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("demo_user.id"), nullable=True)
    email: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")

    user: Mapped[User | None] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def placed_by(self) -> str:
        return self.user.name if self.user is not None else f"{self.email} (guest)"


class OrderLine(db.Model):
    __tablename__ = "demo_order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("demo_order.id"))
    product_id: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(100))
    unit_price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity
