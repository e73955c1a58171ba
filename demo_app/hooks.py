"""Glue between the shop and flask-cart: template helpers, signal receivers, error pages.

The shop's forms post to flask-cart's own form endpoints (``POST /cart/items`` and
friends, answering 303); flask-cart flashes errors (category ``cart-error``) and the
receivers here flash what went right. The JSON routes used by JavaScript flash nothing.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, flash, g, render_template, request
from flask_wtf.csrf import CSRFError

from flask_cart import current_cart, signals
from flask_cart.errors import CartError, StoreUnavailable

from .cartview import money
from .models import Product, db

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
QUOTED_ID = re.compile(r"'([A-Za-z0-9_.-]{1,64})'")


def init_app(app: Flask) -> None:
    app.add_template_filter(money, "money")
    app.add_template_filter(readable, "readable")
    app.context_processor(lambda: {"cart_badge": cart_badge})
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(StoreUnavailable, store_unavailable)
    app.register_error_handler(404, not_found)
    signals.cart_merged.connect(merged, app)
    signals.cart_item_added.connect(added, app)
    signals.cart_item_updated.connect(updated, app)
    signals.cart_item_removed.connect(removed, app)
    signals.cart_cleared.connect(cleared, app)


def cart_badge() -> int | None:
    """Units in the request's cart, for the header; None when the store does not answer."""
    if "cart_badge" not in g:
        try:
            g.cart_badge = current_cart.quantity()
        except CartError:
            g.cart_badge = None
    return g.cart_badge  # type: ignore[no-any-return]


def product_name(product_id: str) -> str:
    product = db.session.get(Product, product_id)
    return product.name if product is not None else product_id


def readable(message: str) -> str:
    """flask-cart's messages name products by id ("only 3 of 'wool-socks' in stock"):
    show their names, with a capital first letter."""

    def name(found: re.Match[str]) -> str:
        product = db.session.get(Product, found.group(1))
        return product.name if product is not None else found.group(0)

    text = QUOTED_ID.sub(name, message)
    return text[:1].upper() + text[1:]


# -- signal receivers ------------------------------------------------------------------


def form_post() -> bool:
    """True in a no-JavaScript form post to flask-cart's routes (the JSON routes flash nothing)."""
    return request.blueprint == "flask_cart" and request.mimetype in FORM_TYPES


def merged(sender: Any, moved: Any = None, dropped: Any = None, **extra: Any) -> None:
    """After a login merged a guest cart: "2 items from your guest cart were added"."""
    try:
        units = sum(int(n) for n in (moved or {}).values())
    except (AttributeError, TypeError, ValueError):
        units = 0
    if units > 0:
        noun, verb = ("item", "was") if units == 1 else ("items", "were")
        flash(f"{units} {noun} from your guest cart {verb} added to your cart.", "success")
    if dropped:
        names = ", ".join(product_name(str(pid)) for pid in dropped)
        flash(
            f"Left out of your cart (no room or no stock): {names}.",
            "warning",
        )
    g.pop("cart_badge", None)


def added(sender: Any, product_id: str = "", quantity: int = 0, **extra: Any) -> None:
    if form_post():
        flash(f"Added {quantity} \u00d7 {product_name(product_id)} to your cart.", "success")


def updated(sender: Any, product_id: str = "", quantity: int = 0, **extra: Any) -> None:
    if form_post():
        flash(f"{product_name(product_id)}: quantity set to {quantity}.", "success")


def removed(sender: Any, product_id: str = "", **extra: Any) -> None:
    if form_post():
        flash(f"Removed {product_name(product_id)} from your cart.", "info")


def cleared(sender: Any, **extra: Any) -> None:
    if form_post():
        flash("Your cart is empty.", "info")


# -- error pages -----------------------------------------------------------------------


def wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def csrf_error(error: CSRFError) -> Any:
    if wants_json():
        return {"error": {"code": "csrf_failed", "message": error.description}}, 400
    return render_template("csrf_error.html"), 400


def store_unavailable(error: StoreUnavailable) -> Any:
    if wants_json():
        return {"error": {"code": error.code, "message": error.message}}, 503
    return render_template("unavailable.html", message=error.message), 503


def not_found(error: Any) -> Any:
    if wants_json():
        return {"error": {"code": "not_found", "message": "not found"}}, 404
    return render_template("not_found.html"), 404
