"""The JSON routes (and their form-post twins for pages without JavaScript).

Every route takes ``?instance=``. Successes answer the cart as JSON (form posts: 303 to a
same-site ``next``); failures answer ``{"error": {"code", "message"}}`` with the status of
the error: 400 malformed, 403 cross-site, 404 unknown product or line, 422 over a cap or
the stock, 503 store unavailable. A request that wants a page (a navigation or a form
post, flask_cart.navigation.wants_page) gets flask_cart.shopper's answer instead.
Mutating routes refuse another site's ``Origin`` and ``Sec-Fetch-Site: cross-site``,
except an ``Origin`` in CART_TRUSTED_ORIGINS; under Flask-WTF's CSRFProtect they also need
its token.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Request, Response, current_app, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from .body import form_fields, quantity, read_body
from .context import finish_request, prepare_request, request_carts
from .errors import (
    CartError,
    CrossSiteRequest,
    InvalidIdempotencyKey,
    MalformedBody,
    StoreUnavailable,
)
from .navigation import same_site_url, wants_page
from .request_cart import RequestCart
from .shopper import error_answer, failure_answer, http_message, landing
from .stores.failures import PUBLIC_MESSAGE

#: ``templates/flask_cart/*.html`` of the app (or of another blueprint) win over these.
blueprint = Blueprint("flask_cart", __name__, template_folder="templates")
# Every request of the app, not only the cart routes, finds its cart through these.
blueprint.before_app_request(prepare_request)
blueprint.after_app_request(finish_request)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


# -- request checks and input ---------------------------------------------------------------


@blueprint.before_request
def _refuse_cross_site() -> None:
    """Changes from another site are refused, unless its Origin is in CART_TRUSTED_ORIGINS
    (a browser sends ``Sec-Fetch-Site: cross-site`` with a trusted origin too)."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    if req.method in SAFE_METHODS or req.endpoint == "flask_cart.unsubscribe":
        return  # the unsubscribe route takes RFC 8058 one-click POSTs (see contact.py)
    headers = req.headers
    origin = headers.get("Origin")
    if origin is not None and _trusted_origin(origin):
        return
    if headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise CrossSiteRequest("Another site may not change this cart.")
    if origin is not None and not _same_site_origin(origin):
        raise CrossSiteRequest("Another site may not change this cart.")


def _trusted_origin(origin: str) -> bool:
    return origin.strip().rstrip("/").lower() in request_carts().settings.trusted_origins


def _same_site_origin(origin: str) -> bool:
    origin = origin.strip().rstrip("/").lower()
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc == request.host.lower()


def _cart() -> RequestCart:
    """The request's cart of ``?instance=``; a change applies the ``Idempotency-Key``."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    cart = request_carts(req).cart(req.args.get("instance", "cart"))
    if req.method not in SAFE_METHODS:
        cart.idempotent(idempotency_key(req))
    return cart


def idempotency_key(req: Request | None = None) -> str | None:
    """The ``Idempotency-Key`` header of `req` (the current request by default): 1 to 255
    printable ASCII characters, or absent."""
    raw = (request if req is None else req).headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 printable ASCII characters")
    return key


def is_form_post() -> bool:
    """True in a form post (a page without JavaScript) to one of flask-cart's routes: the
    change answers a redirect, so a signal receiver may ``flash`` what happened."""
    return request.blueprint == blueprint.name and form_fields() is not None


# -- answers ---------------------------------------------------------------------------------


def cart_json(cart: RequestCart) -> dict[str, Any]:
    """The contract's JSON form of a cart."""
    return cart.as_json()


def _answer(cart: RequestCart) -> ResponseReturnValue:
    if form_fields() is not None:  # a form: 303 to its same-site `next` (or Referer)
        return redirect(landing(back=True), code=303)
    return cart.json_response()


def error_response(code: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


@blueprint.errorhandler(CartError)
def _cart_error(exc: CartError) -> Any:
    if wants_page():  # a navigation or a form post: a flash and a 303, or a page
        return error_answer(exc)
    return jsonify(exc.to_dict()), exc.status


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    if type(exc).__name__ == "CSRFError":  # Flask-WTF: a missing or bad CSRF token
        status, code = 403, "csrf_failed"
    if wants_page():
        return failure_answer(code, status, http_message(code, status))
    return error_response(code, exc.description or exc.name, status)


@blueprint.after_request
def _no_cache(response: Response) -> Response:
    headers = response.headers
    headers["Cache-Control"] = "private, no-store"
    if "Vary" in headers:
        response.vary.add("Cookie")
    else:  # the common case, without parsing and writing back a header set
        headers["Vary"] = "Cookie"
    return response


def unmatched_route() -> ResponseReturnValue | None:
    """App-wide ``before_request``: a URL or method under CART_URL_PREFIX that matches no
    route answers the JSON error (404 ``not_found``, 405 ``method_not_allowed``); anywhere
    else the app handles it as it would without flask-cart.

    Blueprint error handlers never see routing errors, and an app handler for 404 would
    clash with the shop's own; Flask runs ``before_request`` before it raises the routing
    error, so the answer is given here.
    """
    exc = request.routing_exception
    if not isinstance(exc, (NotFound, MethodNotAllowed)) or not _under_prefix(request.path):
        return None
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(exc.valid_methods or ())
        message = f"{request.method} is not allowed here (allowed: {allowed})"
        response, status = error_response("method_not_allowed", message, 405)
        response.headers["Allow"] = allowed
    else:
        response, status = error_response("not_found", "no cart route matches this URL", 404)
    return _no_cache(response), status


def _under_prefix(path: str) -> bool:
    """True for CART_URL_PREFIX and the paths below it (never for an empty prefix)."""
    manager = current_app.extensions.get("cart")
    if manager is None:
        return False
    prefix = manager.settings().url_prefix.rstrip("/")
    return bool(prefix) and (path == prefix or path.startswith(prefix + "/"))


# -- routes ----------------------------------------------------------------------------------


@blueprint.get("", strict_slashes=False)
def view_cart() -> ResponseReturnValue:
    """The cart; 503 when the store does not answer (pages show the browser's copy)."""
    cart = _cart()
    if cart.unavailable:
        raise StoreUnavailable(PUBLIC_MESSAGE)
    return _answer(cart)


@blueprint.post("/items")
def add_item() -> ResponseReturnValue:
    """Add `quantity` (default 1) units of `product_id` at the loader's price."""
    data = read_body()
    cart = _cart()
    cart.add_item(data.get("product_id"), quantity(data, default=1))
    return _answer(cart)


@blueprint.patch("/items/<path:product_id>")
def update_item(product_id: str) -> ResponseReturnValue:
    """Set the line's quantity; 0 removes it."""
    data = read_body()
    cart = _cart()
    cart.set_item(product_id, quantity(data))
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
    data = read_body()
    method = str(data.get("_method", "")).upper()
    cart = _cart()
    if method == "PATCH":
        cart.set_item(product_id, quantity(data))
    elif method == "DELETE":
        cart.remove_item(product_id)
    else:
        raise MalformedBody("_method must be PATCH or DELETE")
    return _answer(cart)


@blueprint.post("", strict_slashes=False)
def post_cart() -> ResponseReturnValue:
    """For forms: ``_method=DELETE`` empties the cart."""
    data = read_body()
    if str(data.get("_method", "")).upper() != "DELETE":
        raise MalformedBody("_method must be DELETE")
    cart = _cart()
    cart.clear()
    return _answer(cart)


__all__ = [
    "CrossSiteRequest",
    "StoreUnavailable",
    "blueprint",
    "cart_json",
    "idempotency_key",
    "is_form_post",
    "same_site_url",
    "unmatched_route",
]
