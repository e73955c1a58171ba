"""Glue between the shop and flask-cart: template helpers, signal receivers, error pages.

Everything here reads flask-cart through its public names (CONTRACT.md) and degrades
when an optional piece is missing, so the shop keeps working while the library grows.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response

from flask_cart import current_cart
from flask_cart.errors import CartError, StoreUnavailable

from .cartview import money


def init_app(app: Flask) -> None:
    app.add_template_filter(money, "money")
    app.context_processor(lambda: {"cart_badge": cart_badge})
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(StoreUnavailable, store_unavailable)
    app.register_error_handler(404, not_found)
    try:
        from flask_cart.signals import cart_merged
    except ImportError:  # pragma: no cover - the integration is not there yet
        return
    cart_merged.connect(merged_flash, app)


def cart_badge() -> int | None:
    """Units in the request's cart, for the header; None when the store does not answer."""
    if "cart_badge" not in g:
        try:
            g.cart_badge = current_cart.quantity()
        except CartError:
            g.cart_badge = None
    return g.cart_badge  # type: ignore[no-any-return]


def link_guest_cart(user: Any) -> None:
    """After registration: the guest's cart becomes the new customer's cart."""
    from . import carts

    link = getattr(carts, "link_guest_cart", None)
    if link is not None:
        link(user)


def merged_flash(sender: Any, **extra: Any) -> None:
    """"2 items from your guest cart were added" after a login merged a guest cart."""
    moved = extra.get("moved") or {}
    try:
        units = sum(int(n) for n in moved.values())
    except (AttributeError, TypeError, ValueError):
        units = 0
    if units > 0:
        noun, verb = ("item", "was") if units == 1 else ("items", "were")
        flash(f"{units} {noun} from your guest cart {verb} added to your cart.", "success")
    clamped = extra.get("clamped") or extra.get("dropped") or {}
    if clamped:
        flash(
            "Some items from your guest cart did not fit within the cart's limits "
            "and were left out.",
            "warning",
        )
    g.pop("cart_badge", None)


def csrf_error(error: CSRFError) -> Any:
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        return {"error": {"code": "csrf", "message": error.description}}, 400
    flash("Your form expired: please try again.", "warning")
    return redirect(request.referrer or url_for("shop.catalogue"), code=303)


def store_unavailable(error: StoreUnavailable) -> Any:
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return {"error": {"code": error.code, "message": error.message}}, 503
    return render_template("unavailable.html", message=error.message), 503


def not_found(error: Any) -> Any:
    return render_template("not_found.html"), 404


def see_other(location: str) -> Response:
    return redirect(location, code=303)
