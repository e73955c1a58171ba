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

from flask_cart import CartError, StoreUnavailable, current_cart, is_form_post, signals

from .cartview import money
from .models import Product, db

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


def cart_settings() -> Any:
    """The shop's flask-cart settings, as checked at init_app (read-only)."""
    from . import carts  # the package imports this module

    return carts.settings()


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
    return is_form_post()


GUEST_LINES = "demo_guest_lines"


def remember_guest_lines() -> None:
    """Before a log-in: the guest cart's quantities, to tell at the merge what was cut short.

    (`cart_merged` says what moved and which products were dropped; a line clamped by the
    stock shows only as fewer units moved than the guest cart held.)"""
    try:
        current_cart.refresh()
        lines = {pid: int(details["quantity"]) for pid, details in current_cart.get().items()}
        g.setdefault(GUEST_LINES, lines)
    except CartError:
        pass


def merged(
    sender: Any, cart: Any = None, moved: Any = None, dropped: Any = None, **extra: Any
) -> None:
    """After a login merged a guest cart: "2 items from your guest cart were added", and for
    each line left out or cut short, what and why."""
    try:
        moved = {str(pid): int(n) for pid, n in (moved or {}).items()}
    except (AttributeError, TypeError, ValueError):
        moved = {}
    dropped = [str(pid) for pid in dropped or []]
    units = sum(moved.values())
    if units > 0:
        noun, verb = ("item", "was") if units == 1 else ("items", "were")
        flash(f"{units} {noun} from your guest cart {verb} added to your cart.", "success")
    guest: dict[str, int] = g.pop(GUEST_LINES, None) or {}
    for product_id, had in guest.items():
        if product_id in dropped or moved.get(product_id, 0) >= had:
            continue
        got = moved.get(product_id, 0)
        now = cart_quantity(cart, product_id)
        what = "none" if got == 0 else f"only {got}"
        flash(
            f"{product_name(product_id)}: {what} of the {had} in your guest cart could be "
            f"added: {why_capped(product_id, now)}, and your cart has {now}.",
            "warning",
        )
    for product_id in dropped:
        had = guest.get(product_id)
        units_text = f" ({had} in your guest cart)" if had else ""
        flash(
            f"{product_name(product_id)}{units_text} was left out of your cart: "
            f"{why_dropped(product_id)}.",
            "warning",
        )
    g.pop("cart_badge", None)


def cart_quantity(cart: Any, product_id: str) -> int:
    try:
        return int((cart or current_cart).get_product(product_id).get("quantity", 0))
    except (CartError, TypeError, ValueError):
        return 0


def why_capped(product_id: str, now: int) -> str:
    product = db.session.get(Product, product_id)
    if product is not None and product.stock <= now:
        return f"only {product.stock} in stock"
    cap = cart_settings().limits.max_line_quantity
    return f"at most {cap} per line"


def why_dropped(product_id: str) -> str:
    product = db.session.get(Product, product_id)
    if product is None:
        return "it is no longer sold"
    if product.stock <= 0:
        return "it is out of stock"
    cap = cart_settings().limits.max_lines
    return f"a cart holds at most {cap} different products"


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
    """A missing or bad CSRF token: 403 ``csrf_failed`` (JSON) or a page saying what to do.

    Registered on the app for CSRFError (code 400), so it is found before flask-cart's own
    handler of the cart routes: form posts there get the page too, not JSON."""
    if wants_json():
        return {"error": {"code": "csrf_failed", "message": error.description}}, 403
    return render_template("csrf_error.html"), 403


def store_unavailable(error: StoreUnavailable) -> Any:
    if wants_json():
        return error.to_dict(), 503
    return render_template("unavailable.html", message=error.message), 503


def not_found(error: Any) -> Any:
    if wants_json():
        return {"error": {"code": "not_found", "message": "not found"}}, 404
    return render_template("not_found.html"), 404
