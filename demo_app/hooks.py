"""Glue between the shop and flask-cart: template helpers, signal receivers, error pages.

The shop's forms post to flask-cart's own form endpoints (``POST /cart/items`` and
friends, answering 303); flask-cart flashes errors (category ``cart-error``) and the
receivers here flash what went right. The JSON routes used by JavaScript flash nothing.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from flask import Flask, flash, g, get_flashed_messages, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from flask_cart import CartError, StoreUnavailable, current_cart, is_form_post, signals

from . import elsewhere
from .cartview import money, units
from .models import Product, db

QUOTED_ID = re.compile(r"'([A-Za-z0-9_.:-]{1,128})'")
#: flask-cart's wording of a refusal -> the shop's (applied to the messages it flashes).
SHOP_WORDS = [
    (
        re.compile(r"^quantity is limited to (\d+) per line.*$", re.I),
        r"You can have at most \1 of one item",
    ),
    (
        re.compile(r"^a cart holds at most (\d+) lines$", re.I),
        r"Your cart can hold at most \1 different products",
    ),
]
UNKNOWN_PRODUCT = "That product is not sold here any more"


def init_app(app: Flask) -> None:
    app.add_template_filter(money, "money")
    app.add_template_filter(readable, "readable")
    app.add_template_filter(units, "units")
    app.context_processor(lambda: {"cart_badge": cart_badge})
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(StoreUnavailable, store_unavailable)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(500, server_error)
    signals.cart_merged.connect(merged, app)
    signals.cart_item_added.connect(added, app)
    signals.cart_item_updated.connect(updated, app)
    signals.cart_item_removed.connect(removed, app)
    signals.cart_cleared.connect(cleared, app)
    signals.cart_checked_out.connect(checked_out, app)


def cart_badge() -> int | None:
    """Units in the request's cart, for the header; None when the store does not answer
    (the page says "cart unavailable" rather than a number it cannot vouch for)."""
    if "cart_badge" not in g:
        try:
            if not g.get("cart_read") and get_flashed_messages(category_filter=["cart-error"]):
                # A change was just refused: the browser's copy may be what misled it.
                current_cart.refresh()
            quantity = current_cart.quantity()
            g.cart_badge = None if current_cart.unavailable else quantity
        except CartError:
            g.cart_badge = None
    return g.cart_badge  # type: ignore[no-any-return]


def cart_settings() -> Any:
    """The shop's flask-cart settings, as checked at init_app (read-only)."""
    from . import carts  # the package imports this module

    return carts.settings()


def product_name(product_id: str, unknown: str = "A product") -> str:
    """The catalogue's name of a product; `unknown` for one it no longer has (a product id
    is never shown to a shopper)."""
    product = db.session.get(Product, product_id)
    return product.name if product is not None else unknown


def readable(message: str) -> str:
    """flask-cart's messages in the shop's words: products by name, never by id ("only 3
    of 'wool-socks' in stock" -> "Only 3 of Wool socks in stock"), caps as a shopper says
    them, and a capital first letter."""
    text = str(message)
    for pattern, words in SHOP_WORDS:
        text = pattern.sub(words, text)
    unknown = False

    def name(found: re.Match[str]) -> str:
        nonlocal unknown
        product = db.session.get(Product, found.group(1))
        if product is None:
            unknown = True
            return "that product"
        return product.name

    text = QUOTED_ID.sub(name, text)
    if unknown:
        return UNKNOWN_PRODUCT
    return text[:1].upper() + text[1:]


# -- signal receivers ------------------------------------------------------------------


def form_post() -> bool:
    """True in a no-JavaScript form post to flask-cart's routes (the JSON routes flash nothing)."""
    return is_form_post()


def saw(cart: Any) -> None:
    """This browser changed its cart: what it holds now is what this browser has seen."""
    if cart is None or getattr(cart, "instance", "cart") != "cart":
        return
    with contextlib.suppress(CartError):
        elsewhere.remember(cart.get())


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
    saw(cart)


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
    return f"you can have at most {cap} of one item"


def why_dropped(product_id: str) -> str:
    product = db.session.get(Product, product_id)
    if product is None:
        return "it is no longer sold"
    if product.stock <= 0:
        return "it is out of stock"
    cap = cart_settings().limits.max_lines
    return f"a cart holds at most {cap} different products"


def added(
    sender: Any, cart: Any = None, product_id: str = "", quantity: int = 0, **extra: Any
) -> None:
    saw(cart)
    if form_post():
        # Category "added": the page shows it where the shopper is, with a link to the cart.
        flash(f"Added {quantity} \u00d7 {product_name(product_id)} to your cart.", "added")


def updated(
    sender: Any, cart: Any = None, product_id: str = "", quantity: int = 0, **extra: Any
) -> None:
    saw(cart)
    if form_post():
        flash(f"{product_name(product_id)}: quantity set to {quantity}.", "success")


def removed(sender: Any, cart: Any = None, product_id: str = "", **extra: Any) -> None:
    saw(cart)
    if form_post():
        flash(f"Removed {product_name(product_id)} from your cart.", "info")


def cleared(sender: Any, cart: Any = None, **extra: Any) -> None:
    saw(cart)
    if form_post():
        flash("Your cart is empty.", "info")


def checked_out(sender: Any, cart: Any = None, **extra: Any) -> None:
    saw(cart)


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
    """The cart store does not answer: a page of the shop (what the store said goes to the
    log, never to the shopper)."""
    if wants_json():
        return error.to_dict(), 503
    return render_template("unavailable.html"), 503


#: The shop's words for the HTTP errors a shopper may meet: (heading, explanation).
HTTP_ERRORS = {
    404: ("We could not find that page", "The address may be mistyped, or the page moved."),
    405: ("That did not work", "This page cannot be used that way. Go back and try again."),
}


def http_error(error: HTTPException) -> Any:
    """404, 405 and the other HTTP errors as pages of the shop (JSON to a script)."""
    status = error.code or 500
    if status >= 500:
        return server_error(error)
    if wants_json():
        code = (error.name or "error").lower().replace(" ", "_")
        return {"error": {"code": code, "message": error.name or "error"}}, status
    heading, text = HTTP_ERRORS.get(status, ("That did not work", "Go back and try again."))
    response = error.get_response()
    page = render_template("error.html", status=status, heading=heading, text=text)
    return page, status, {"Allow": response.headers["Allow"]} if "Allow" in response.headers else {}


def server_error(error: Any) -> Any:
    """An error of ours: a page of the shop saying so, nothing of the error itself (that goes
    to the log). Drawn without the shop's layout if even that fails."""
    if wants_json():
        return {"error": {"code": "internal_error", "message": "Something went wrong."}}, 500
    try:
        return render_template("server_error.html"), 500
    except Exception:  # the layout needs the database and the cart: show the bare page
        return render_template("server_error_bare.html"), 500
