"""The routes of abandoned-cart reminders: a guest's contact address, and stopping them.

``PUT /cart/email`` (JSON ``{"email": "ann@example.com"}``, null forgets it) and ``POST
/cart/email`` (the same, or a form's ``email`` field: a "save my cart" box without
JavaScript, answered with a 303 to its ``next``) keep a contact address with the browser's
cart (`RequestCart.set_email`), under the cross-site rules of every change route. The
answer is ``{"kept": true}``, or false when the browser has no cart yet; a bad address is a
400 ``invalid_input``.

``GET|POST /cart/unsubscribe/<token>`` stops reminders for one cart. The token
(flask_cart.reminders.unsubscribe_links) names the cart's key and uid. A GET changes nothing
(mail scanners open links): it shows ``flask_cart/unsubscribe.html``, whose button POSTs
``List-Unsubscribe=One-Click``. That same body, sent by a mailbox provider as RFC 8058's
one-click unsubscribe (no cookies, no Origin, no CSRF token), stops the reminders too: the
signed token is the only credential either needs. Any other POST body is refused (400).
The flag lives with the cart, keeps through its changes, and goes with it.
"""

from __future__ import annotations

from flask import current_app, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from . import signals
from .body import form_fields, read_body
from .context import request_carts
from .errors import CartError
from .pages import PageError, error_page, page, render
from .reminders import read_unsubscribe
from .shopper import landing, link_redirect
from .views import blueprint

ONE_CLICK = ("List-Unsubscribe", "One-Click")


@blueprint.route("/email", methods=["PUT", "POST"], endpoint="set_email")
def set_email() -> ResponseReturnValue:
    """Keep (null: forget) a contact address with the browser's cart."""
    data = read_body()
    cart = request_carts().cart(request.args.get("instance", "cart"))
    kept = cart.set_email(data.get("email"))
    if form_fields() is not None:
        return redirect(landing(back=True), code=303)
    return jsonify(kept=kept)


@blueprint.route("/unsubscribe/<path:token>", methods=["GET", "POST"], endpoint="unsubscribe")
def unsubscribe(token: str) -> ResponseReturnValue:
    """See the module's docstring."""
    try:
        key, uid = read_unsubscribe(token)
    except CartError as exc:
        return error_page(
            PageError(exc.status, exc.code, "This unsubscribe link is not valid."), link_redirect()
        )
    if request.method != "POST":
        body = render("flask_cart/unsubscribe.html", action=request.path, done=False)
        return page(body, 200)
    if request.form.get(ONE_CLICK[0]) != ONE_CLICK[1]:
        return error_page(
            PageError(400, "invalid_input", "This request cannot stop reminders."),
            link_redirect(),
        )
    store = current_app.extensions["cart"].get_store()
    if store.unsubscribe(key, uid):
        signals.cart_unsubscribed.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            identifier=key.identifier,
            instance=key.instance,
        )
    body = render("flask_cart/unsubscribe.html", action=request.path, done=True)
    return page(body, 200)
