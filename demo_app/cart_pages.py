"""The cart page, checkout and the QA "cart status" page.

The cart page's forms post to flask-cart's form endpoints (303 back here); with
JavaScript, static/cart.js sends the same changes to the JSON routes instead.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from flask_cart import current_cart
from flask_cart.errors import CartError

from . import cartview, status
from .models import Order, OrderLine, Product, db

SEEN_PRICES = "demo_seen_prices"


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/basket", "cart", cart_page)
    bp.add_url_rule("/checkout", "checkout", checkout, methods=["GET", "POST"])
    bp.add_url_rule("/status", "status", status_page)


def see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)


def old_prices() -> dict[str, Decimal]:
    """The prices the lines were added at, where a line's price has changed since.

    flask-cart serves lines at today's price; the stored price costs one more read,
    done only when a line says its price changed.
    """
    items = current_cart.get()
    if not any(details.get("price_changed") for details in items.values()):
        return {}
    try:
        stored = current_cart.store.load(current_cart.key)
    except CartError:
        return {}
    return {pid: Decimal(line.unit_cost) for pid, line in stored.lines.items()}


def current_view(with_old_prices: bool = False) -> cartview.CartView:
    return cartview.build(current_cart.get(), old_prices() if with_old_prices else None)


def flash_price_changes(view: cartview.CartView) -> None:
    """Flash each price change once per session (the line keeps a note on the page)."""
    seen: dict[str, str] = dict(session.get(SEEN_PRICES, {}))
    for line in view.lines:
        if line.price_changed and seen.get(line.product_id) != str(line.unit_price):
            flash(cartview.price_change(line), "warning")
            seen[line.product_id] = str(line.unit_price)
    if seen != session.get(SEEN_PRICES, {}):
        session[SEEN_PRICES] = seen


# -- the cart page ---------------------------------------------------------------------


def cart_page() -> str:
    view = current_view(with_old_prices=True)
    flash_price_changes(view)
    return render_template("cart.html", cart=view)


# -- checkout --------------------------------------------------------------------------


@login_required
def checkout() -> Any:
    view = current_view(with_old_prices=request.method == "GET")
    if not view.lines:
        flash("Your cart is empty: add something first.", "info")
        return see_other("shop.catalogue")
    if request.method == "GET":
        return render_template("checkout.html", cart=view)
    if view.problems:
        for message in view.problems:
            flash(message, "warning")
        return see_other("shop.cart")
    # The snapshot is what is bought: another device may have changed the cart since the
    # page was drawn, so the order is built from it, at today's prices, within the stock.
    snapshot = current_cart.checkout()
    lines = cartview.build(snapshot.get("items") or {}).lines
    if not lines:
        flash("Your cart is empty: was it checked out on another device?", "info")
        return see_other("shop.orders")
    order = Order(user_id=current_user.id, total=Decimal(0), created_at=datetime.now(timezone.utc))
    for line in lines:
        product = db.session.get(Product, line.product_id, with_for_update=True)
        if product is None or product.stock <= 0:
            flash(f"{line.name} sold out before your order was placed.", "warning")
            continue
        quantity = min(line.quantity, product.stock)
        if quantity < line.quantity:
            flash(f"Only {quantity} of {product.name} were left; your order has those.", "warning")
        product.stock -= quantity
        order.lines.append(
            OrderLine(
                product_id=product.id,
                name=product.name,
                unit_price=product.price,
                quantity=quantity,
            )
        )
        order.total += product.price * quantity
    if not order.lines:
        db.session.rollback()
        flash("Nothing in your cart could be ordered.", "error")
        return see_other("shop.cart")
    db.session.add(order)
    db.session.commit()
    session.pop(SEEN_PRICES, None)
    flash(f"Thank you! Order #{order.id} is placed.", "success")
    return see_other("shop.order", order_id=order.id)


# -- QA --------------------------------------------------------------------------------


def status_page() -> str:
    return render_template("status.html", rows=status.describe())
