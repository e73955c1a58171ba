"""The JSON routes (and their form-post twins for pages without JavaScript).

Every route takes ``?instance=``. Successes answer the cart as JSON (form posts: 303 to a
same-site ``next``); failures answer ``{"error": {"code", "message"}}`` with the status of
the error: 400 malformed, 403 cross-site, 404 unknown product or line, 422 over a cap or
the stock, 503 store unavailable. Mutating routes refuse another site's ``Origin`` and
``Sec-Fetch-Site: cross-site``; under Flask-WTF's CSRFProtect they also need its token.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .context import finish_request, prepare_request, request_carts
from .errors import (
    CartError,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidQuantity,
    StoreUnavailable,
)
from .request_cart import RequestCart

blueprint = Blueprint("flask_cart", __name__)
# Every request of the app, not only the cart routes, finds its cart through these.
blueprint.before_app_request(prepare_request)
blueprint.after_app_request(finish_request)

MAX_BODY_BYTES = 16 * 1024
JSON_INT_LIMIT = 2**31 - 1
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_DIGITS = re.compile(r"[0-9]{1,10}")
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_FORM = "flask_cart.form"


class MalformedBody(InvalidInput):
    code = "malformed_body"


class CrossSiteRequest(CartError):
    """A change asked for by another site (403); nothing was changed."""

    code = "cross_site"
    status = 403


# -- request checks and input ---------------------------------------------------------------


@blueprint.before_request
def _refuse_cross_site() -> None:
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise CrossSiteRequest("cross-site requests may not change the cart")
    origin = request.headers.get("Origin")
    if origin is not None and not _same_site_origin(origin):
        raise CrossSiteRequest(f"requests from {origin[:100]!r} may not change the cart")


def _same_site_origin(origin: str) -> bool:
    origin = origin.strip().rstrip("/").lower()
    if origin in request_carts().settings.trusted_origins:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc == request.host.lower()


def _is_form() -> bool:
    return request.mimetype in FORM_TYPES


def _body() -> dict[str, Any]:
    """The request body as a dict: a JSON object or form fields; {} when there is none."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise MalformedBody(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if _is_form():
        request.environ[_FORM] = True
        request.max_content_length = MAX_BODY_BYTES
        try:
            return {key: request.form.get(key) for key in request.form}
        except HTTPException:
            raise MalformedBody("the form body could not be read") from None
    request.max_content_length = MAX_BODY_BYTES  # also bounds a chunked body
    try:
        raw = request.get_data(cache=True)
    except HTTPException:
        raise MalformedBody(f"the body is larger than {MAX_BODY_BYTES} bytes") from None
    if not raw.strip():
        return {}
    if not request.is_json:
        raise MalformedBody("send JSON (Content-Type: application/json) or a form")
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise MalformedBody("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _quantity(data: dict[str, Any], default: int | None = None) -> Any:
    """The body's quantity: a JSON integer (or a form's digits); range checked by the cart."""
    if "quantity" not in data:
        if default is None:
            raise InvalidQuantity("quantity is required")
        return default
    value = data["quantity"]
    if request.environ.get(_FORM) and isinstance(value, str):
        if not _DIGITS.fullmatch(value.strip()):
            raise InvalidQuantity("quantity must be a whole number")
        value = int(value)
    if type(value) is not int:
        raise InvalidQuantity(f"quantity must be an integer, got {_json_type(value)}")
    if not -JSON_INT_LIMIT <= value <= JSON_INT_LIMIT:
        raise InvalidQuantity("quantity is out of range")
    return value


def _json_type(value: Any) -> str:
    names = {bool: "boolean", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _cart() -> RequestCart:
    """The request's cart of ``?instance=``; a change applies the ``Idempotency-Key``."""
    instance = request.args.get("instance", "cart")
    cart = request_carts().cart(instance)
    if request.method not in SAFE_METHODS:
        cart.idempotent(_idempotency_key())
    return cart


def _idempotency_key() -> str | None:
    """The ``Idempotency-Key`` header: 1 to 255 printable ASCII characters, or absent."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 printable ASCII characters")
    return key


# -- answers ---------------------------------------------------------------------------------


def cart_json(cart: RequestCart) -> dict[str, Any]:
    """The contract's JSON form of a cart."""
    return cart.as_json()


def _answer(cart: RequestCart) -> ResponseReturnValue:
    if request.environ.get(_FORM):
        return redirect(_next_url(), code=303)
    return jsonify(cart_json(cart))


def _next_url() -> str:
    """The form's `next` when it stays on this site, else a same-site Referer, else "/"."""
    for candidate in (request.form.get("next"), request.referrer):
        if candidate and _same_site_url(candidate):
            return candidate
    return "/"


def _same_site_url(url: str) -> bool:
    if "\\" in url or not url.isprintable():
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.scheme and not parts.netloc:
        return url.startswith("/") and not url.startswith("//")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()


def error_response(code: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


@blueprint.errorhandler(CartError)
def _cart_error(exc: CartError) -> Any:
    if request.environ.get(_FORM) and exc.status not in (403, 503):
        flash(exc.message, "cart-error")
        return redirect(_next_url(), code=303)
    return error_response(exc.code, exc.message, exc.status)


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    if type(exc).__name__ == "CSRFError":  # Flask-WTF: a missing or bad CSRF token
        status, code = 403, "csrf_failed"
    return error_response(code, exc.description or exc.name, status)


@blueprint.after_request
def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
    return response


# -- routes ----------------------------------------------------------------------------------


@blueprint.get("", strict_slashes=False)
def view_cart() -> ResponseReturnValue:
    """The cart."""
    return _answer(_cart())


@blueprint.post("/items")
def add_item() -> ResponseReturnValue:
    """Add `quantity` (default 1) units of `product_id` at the loader's price."""
    data = _body()
    cart = _cart()
    cart.add_item(data.get("product_id"), _quantity(data, default=1))
    return _answer(cart)


@blueprint.patch("/items/<path:product_id>")
def update_item(product_id: str) -> ResponseReturnValue:
    """Set the line's quantity; 0 removes it."""
    data = _body()
    cart = _cart()
    cart.set_item(product_id, _quantity(data))
    return _answer(cart)


@blueprint.delete("/items/<path:product_id>")
def remove_item(product_id: str) -> ResponseReturnValue:
    """Remove the line."""
    cart = _cart()
    cart.remove_item(product_id)
    return _answer(cart)


@blueprint.delete("", strict_slashes=False)
def clear_cart() -> ResponseReturnValue:
    """Empty the cart."""
    cart = _cart()
    cart.clear()
    return _answer(cart)


@blueprint.post("/items/<path:product_id>")
def post_item(product_id: str) -> ResponseReturnValue:
    """For forms: ``_method=PATCH`` (with `quantity`) or ``_method=DELETE``."""
    data = _body()
    method = str(data.get("_method", "")).upper()
    cart = _cart()
    if method == "PATCH":
        cart.set_item(product_id, _quantity(data))
    elif method == "DELETE":
        cart.remove_item(product_id)
    else:
        raise MalformedBody("_method must be PATCH or DELETE")
    return _answer(cart)


@blueprint.post("", strict_slashes=False)
def post_cart() -> ResponseReturnValue:
    """For forms: ``_method=DELETE`` empties the cart."""
    data = _body()
    if str(data.get("_method", "")).upper() != "DELETE":
        raise MalformedBody("_method must be DELETE")
    cart = _cart()
    cart.clear()
    return _answer(cart)


__all__ = ["CrossSiteRequest", "StoreUnavailable", "blueprint", "cart_json"]
