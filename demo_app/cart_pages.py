"""The cart page, its no-JavaScript form actions, checkout and the QA "cart status" page.

With JavaScript the pages talk to flask-cart's JSON routes (static/cart.js); without it
the same forms post here and get a 303 redirect back.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from flask_cart import current_cart
from flask_cart.errors import CartError

from . import cartview, status
from .models import Order, OrderLine, Product, db


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/basket", "cart", cart_page)
    bp.add_url_rule("/basket/add", "cart_add", cart_add, methods=["POST"])
    bp.add_url_rule("/basket/items/<product_id>", "cart_update", cart_update, methods=["POST"])
    bp.add_url_rule(
        "/basket/items/<product_id>/remove", "cart_remove", cart_remove, methods=["POST"]
    )
    bp.add_url_rule("/basket/empty", "cart_empty", cart_empty, methods=["POST"])
    bp.add_url_rule("/checkout", "checkout", checkout, methods=["GET", "POST"])
    bp.add_url_rule("/status", "status", status_page)


def see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)


def back(default: str = "shop.cart") -> Response:
    from .views import safe_next

    return redirect(safe_next(request.form.get("next"), default), code=303)


def form_quantity(default: int | None = None, minimum: int = 1) -> int | None:
    """The form's quantity as an int in range, or None (with a message flashed)."""
    raw = request.form.get("quantity", "").strip()
    if not raw and default is not None:
        return default
    limit = int(current_app.config.get("CART_MAX_LINE_QUANTITY", 999))
    if raw.isdigit() and minimum <= int(raw) <= limit:
        return int(raw)
    flash(f"Choose a quantity from {minimum} to {limit}.", "error")
    return None


def current_view() -> cartview.CartView:
    return cartview.build(current_cart.get())


# -- the cart page ---------------------------------------------------------------------


def cart_page() -> str:
    view = current_view()
    for message in view.price_changes:
        flash(message, "warning")
    for message in view.problems:
        flash(message, "warning")
    return render_template("cart.html", cart=view)


def cart_add() -> Response:
    quantity = form_quantity(default=1)
    product_id = request.form.get("product_id", "")
    product = db.session.get(Product, product_id) if product_id else None
    if quantity is None:
        return back("shop.catalogue")
    if product is None:
        flash("That product is not in our catalogue.", "error")
        return back("shop.catalogue")
    in_cart = int(current_cart.get_product(product.id).get("quantity", 0))
    if product.stock <= 0:
        flash(f"{product.name} is out of stock.", "error")
    elif in_cart + quantity > product.stock:
        flash(
            f"Only {product.stock} of {product.name} in stock"
            + (f"; your cart already has {in_cart}." if in_cart else "."),
            "error",
        )
    else:
        try:
            current_cart.add(product.id, product.price, quantity, name=product.name)
        except CartError as error:
            flash(error.message, "error")
        else:
            flash(f"Added {quantity} × {product.name} to your cart.", "success")
    return back("shop.catalogue")


def cart_update(product_id: str) -> Response:
    quantity = form_quantity(minimum=0)
    if quantity is None:
        return back()
    product = db.session.get(Product, product_id)
    if product is not None and quantity > max(product.stock, 0):
        in_cart = int(current_cart.get_product(product_id).get("quantity", 0))
        if quantity > in_cart:  # lowering an over-stock line is always allowed
            flash(f"Only {product.stock} of {product.name} in stock.", "error")
            return back()
    try:
        current_cart.update(product_id, quantity)
    except CartError as error:
        flash(error.message, "error")
    else:
        if quantity == 0:
            flash("Removed from your cart.", "info")
    return back()


def cart_remove(product_id: str) -> Response:
    try:
        removed = current_cart.remove(product_id)
    except CartError as error:
        flash(error.message, "error")
    else:
        flash("Removed from your cart." if removed else "That was not in your cart.", "info")
    return back()


def cart_empty() -> Response:
    try:
        current_cart.clear()
    except CartError as error:
        flash(error.message, "error")
    else:
        flash("Your cart is empty.", "info")
    return back()


# -- checkout --------------------------------------------------------------------------


@login_required
def checkout() -> Any:
    view = current_view()
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
    items = snapshot.get("items") or {}
    order = Order(user_id=current_user.id, total=Decimal(0), created_at=datetime.now(timezone.utc))
    for line in cartview.build(items).lines:
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
    flash(f"Thank you! Order #{order.id} is placed.", "success")
    return see_other("shop.order", order_id=order.id)


# -- QA --------------------------------------------------------------------------------


def status_page() -> str:
    return render_template("status.html", rows=status.describe())
