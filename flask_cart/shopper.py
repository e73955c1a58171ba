"""What a shopper is told when a page they navigated to, or a form they posted, fails.

Such a request (flask_cart.navigation.wants_page) never gets a JSON body: it gets a 303 to
a same-site ``next`` (else CART_LINK_REDIRECT) with the error flashed (category
``cart-error``), or, where a redirect would be unsafe or would loop, the page
``flask_cart/error.html`` with the error's status. The words are this module's own, in
plain language: never an exception's text, a product id from a URL, or a server's detail.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, request
from werkzeug.wrappers import Response

from .body import form_fields
from .catalog import Unavailable
from .context import request_carts
from .errors import CartError
from .navigation import same_site_url
from .pages import PageError, error_page

#: Flash category of a failed navigation or form post.
ERROR_CATEGORY = "cart-error"
#: Errors answered with the page, never with a redirect (it would act for another site).
PAGE_ONLY = frozenset({"cross_site", "navigation_required", "confirmation_required"})
CSRF_FAILED = "csrf_failed"
DEFAULT_MESSAGE = "Your cart could not be changed. Please try again."
UNAVAILABLE = "Your cart is unavailable right now. Please try again in a moment."
_BY_CODE = {
    "store_unavailable": UNAVAILABLE,
    "cross_site": "Your cart was not changed: the request came from another site.",
    "navigation_required": "This link changes your cart only when you open it in your browser.",
    "confirmation_required": "Your cart was not changed: open the link again and confirm it "
    "on its page.",
    CSRF_FAILED: "Your cart was not changed because the page had expired. Please try again.",
    "link_expired": "This link has expired.",
    "invalid_link": "This link is not valid. It may have been cut short or changed.",
    "login_required": "Log in to see your saved cart.",
    "invalid_quantity": "That quantity is not valid: use a whole number.",
    "invalid_product_id": "This product is not available.",
    "invalid_instance": "That cart is not available.",
    "unknown_product": "This product is no longer available.",
    "line_not_found": "That item is no longer in your cart.",
    "product_unavailable": "This product cannot be bought right now.",
    "cart_closed": "Your cart was just updated. Please try again.",
    "cart_changed": "Your cart has changed since you reviewed it. Please check it again.",
    "lines_unavailable": "Some items in your cart are no longer available.",
}
_BY_STATUS = {
    400: "Your cart was not changed: the request could not be read.",
    401: "Log in to see your cart.",
    403: "Your cart was not changed.",
    404: "This item is no longer available.",
    409: "Your cart was just updated. Please try again.",
    410: "This link has expired.",
    422: "Your cart was not changed.",
    503: UNAVAILABLE,
}


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 item``, ``2 items``."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def shopper_message(exc: CartError) -> str:
    """The error in plain words for the shopper (the caps and the stock with their numbers)."""
    limits = _limits()
    if exc.code == "quantity_limit" and limits is not None:
        return f"You can have at most {limits.max_line_quantity} of one item."
    if exc.code == "line_limit" and limits is not None:
        return f"Your cart can hold at most {plural(limits.max_lines, 'different item')}."
    if exc.code == "insufficient_stock":
        return _stock_message(exc)
    for cls in type(exc).__mro__:
        code = cls.__dict__.get("code")
        if code in _BY_CODE:
            return _BY_CODE[code]
    return _BY_STATUS.get(exc.status, DEFAULT_MESSAGE)


def http_message(code: str, status: int) -> str:
    """An HTTP error (Flask-WTF's CSRF failure, a body werkzeug refused) in plain words."""
    return _BY_CODE.get(code) or _BY_STATUS.get(status, DEFAULT_MESSAGE)


def _limits() -> Any:
    manager = current_app.extensions.get("cart")
    return None if manager is None else manager.settings().limits


def _stock_message(exc: CartError) -> str:
    limit = exc.details.get("limit")
    name = product_name(exc.details.get("product_id"))
    if type(limit) is not int:
        return f"There is not enough of {name} in stock."
    if limit <= 0:
        return f"{name} is sold out."
    in_cart = exc.details.get("in_cart")
    already = f", and your cart has {in_cart} already" if type(in_cart) is int and in_cart else ""
    return f"Only {limit} of {name} in stock{already}."


def product_name(product_id: object, default: str = "this item") -> str:
    """The loader's name of a product, else `default` (an id is never shown)."""
    if not isinstance(product_id, str) or "cart" not in current_app.extensions:
        return default
    try:
        product = request_carts().catalog.lookup(product_id)
    except Exception:  # no loader, or no cart state: the default will do
        return default
    if isinstance(product, Unavailable) or not product.name:
        return default
    return str(product.name)


def link_redirect() -> str:
    """CART_LINK_REDIRECT ("/" without flask-cart), a path under the app's root."""
    manager = current_app.extensions.get("cart")
    target = "/" if manager is None else manager.settings().link_redirect
    return request.script_root + target if target.startswith("/") else target


def landing(*, back: bool = False) -> str:
    """Where a navigation or form post lands: a same-site ``next`` (the form's field, else
    the query's), else with `back` a same-site Referer, else CART_LINK_REDIRECT. A
    candidate that is this very URL is passed over (the confirmation page's own POST)."""
    fields = form_fields() or {}
    candidates = [fields.get("next"), request.args.get("next")]
    if back:
        candidates.append(request.referrer)
    for candidate in candidates:
        if isinstance(candidate, str) and candidate and same_site_url(candidate):  # noqa: SIM102
            if not _same_page(candidate):
                return candidate
    return link_redirect()


def failure_answer(code: str, status: int, message: str) -> Response:
    """The answer of a failed navigation or form post: the message flashed and a 303, or
    ``flask_cart/error.html`` where a redirect would act for another site or loop."""
    error = PageError(status, code, message)
    if code in PAGE_ONLY:
        return error_page(error, link_redirect())
    if code == CSRF_FAILED:  # back to the form the shopper sent, when it is this site's
        referrer = request.referrer
        if referrer and same_site_url(referrer):
            flash(message, ERROR_CATEGORY)
            return redirect(referrer, code=303)
        return error_page(error, link_redirect())
    target = landing(back=request.method == "POST")
    if request.method in ("GET", "HEAD") and _same_page(target):
        return error_page(error, "/" if _same_page(link_redirect()) else link_redirect())
    flash(message, ERROR_CATEGORY)
    return redirect(target, code=303)


def error_answer(exc: CartError) -> Response:
    """:func:`failure_answer` for a CartError, in the shopper's words."""
    return failure_answer(exc.code, exc.status, shopper_message(exc))


def _same_page(target: str) -> bool:
    """Whether `target` is the URL being answered (a redirect there would loop)."""
    try:
        path = urlsplit(target).path
    except ValueError:
        return False
    return path == request.script_root + request.path


__all__ = [
    "ERROR_CATEGORY",
    "error_answer",
    "failure_answer",
    "http_message",
    "landing",
    "link_redirect",
    "plural",
    "product_name",
    "shopper_message",
]
