"""What kind of request this is: one that wants a page (:func:`wants_page`), and which
may follow a cart link: a navigation a person started, nothing else.

A cart link (``/cart/add/...``, ``/cart/link/...``, ``/cart/signed/...``,
``/cart/recover/...``) is a GET that changes a cart. Any page on the web can embed it as
an image, a script or a frame, fetch it, or navigate to it from a script, and the browser
sends the shop's cookies with those (Flask's session cookie is ``SameSite=None`` by
default). So a GET acts only when the browser says a person opened it: a top-level
navigation (``Sec-Fetch-Mode: navigate`` with ``Sec-Fetch-Dest: document``, not a prefetch
or prerender: ``Sec-Purpose``, ``Purpose`` or ``X-Moz: prefetch``) with a user activation
(``Sec-Fetch-User: ?1``: a link clicked, a URL typed), or one from the shop's own pages
(``Sec-Fetch-Site: same-origin``: the shop trusts its own scripts and redirects). Other
navigations (another site's ``location = ...``, a meta refresh, an auto-submitted form)
and a browser that sends no ``Sec-Fetch-*`` header get the page ``flask_cart/confirm.html``;
every other ``Sec-Fetch-*`` request is refused with
:class:`~flask_cart.errors.NotANavigation`. Both change nothing.

The page's one button POSTs to the same URL with a signed confirmation token (field
``cart_confirm``: bound to that URL, valid for 10 minutes, and single-use, its nonce
recorded in the cart as the change's marker), beside Flask-WTF's ``csrf_token`` where
``CSRFProtect`` is on; the blueprint's same-site check runs first. A POST without a valid
token (a form another site submits, an old browser's cross-site POST with neither
``Origin`` nor ``Sec-Fetch-*``) changes nothing: a form post gets the page again (403),
to be confirmed there; anything else :class:`~flask_cart.errors.ConfirmationRequired`.
The page may not be framed, so it cannot be clicked blind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Response, current_app, request

from .body import FORM_TYPES, form_fields, read_body
from .errors import CartError, ConfirmationRequired, NotANavigation
from .pages import CONFIRM_FIELD
from .pages import confirmation_page as render_confirmation
from .tokens import confirm_token, read_confirm_token


def wants_page() -> bool:
    """True when the request wants an HTML page (or a redirect) rather than JSON.

    A browser says so with ``Sec-Fetch-Mode``: ``navigate`` (a link followed, a URL typed,
    a form posted) wants a page; ``cors``, ``same-origin``, ``no-cors`` (``fetch``, XHR,
    subresources) want JSON. Without ``Sec-Fetch-*`` (an older browser, a script): a JSON
    body, ``X-Requested-With: XMLHttpRequest`` or an ``Accept`` that prefers
    ``application/json`` want JSON; a form posted (a POST of form fields), or an
    ``Accept`` that prefers ``text/html``, want a page. Nothing said (``curl``, a test
    client): JSON.
    """
    headers = request.headers
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode.strip().lower() == "navigate"
    if request.is_json or headers.get("X-Requested-With", "").lower() == "xmlhttprequest":
        return False
    accept = request.accept_mimetypes
    html, json = accept.quality("text/html"), accept.quality("application/json")
    if json > html:
        return False
    form_post = request.method == "POST" and request.mimetype in FORM_TYPES
    return form_post or html > json


def same_site_url(url: str) -> bool:
    """True for a path on this site (``/cart``) or an absolute http(s) URL of this host;
    False for anything another site could use to send the shopper away."""
    if "\\" in url or not url.isprintable():
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.scheme and not parts.netloc:
        return url.startswith("/") and not url.startswith("//")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()


#: The confirmation page's message when it answers a post without its valid token.
NOT_CONFIRMED = "Your cart was not changed. Press the button to confirm."


@dataclass(frozen=True)
class Follow:
    """The request may follow the link. `nonce`: the confirmation's (a POST), to record
    as the change's marker so that the confirmation is used once."""

    nonce: str | None = None


def follow_or_confirm(
    title: str,
    button: str,
    lines: list[dict[str, Any]] | None = None,
    *,
    always_ask: bool = False,
) -> Response | Follow:
    """:class:`Follow` when this request may follow the link; else the page that asks for a
    click (always, for a GET, with `always_ask`: a recovery link).

    Raises NotANavigation when the browser says the request is not a top-level navigation.
    A POST without the page's valid confirmation token gets the page again (403) when it
    wants a page, else raises ConfirmationRequired.
    """
    if request.method == "POST":
        try:
            return Follow(confirmed())
        except ConfirmationRequired:
            if not wants_page():
                raise
            return confirmation_page(title, button, lines, NOT_CONFIRMED, status=403)
    if not check_navigation() or always_ask or not person_started():
        return confirmation_page(title, button, lines)
    return Follow()


def check_navigation() -> bool:
    """For a GET: True for a top-level navigation, False when the browser sends no
    ``Sec-Fetch-*`` header; NotANavigation for anything else (a prefetch, a subresource,
    a frame, a fetch, a HEAD). A POST passes (True)."""
    if request.method == "POST":
        return True
    if _speculative():
        raise NotANavigation("A link opened in advance by the browser changes nothing.")
    mode = request.headers.get("Sec-Fetch-Mode")
    dest = request.headers.get("Sec-Fetch-Dest")
    if mode is None and dest is None:
        return False
    if request.method == "GET" and mode == "navigate" and dest == "document":
        return True
    raise NotANavigation("This link changes your cart only when you open it in your browser.")


def person_started() -> bool:
    """Whether the browser says a person started this navigation (``Sec-Fetch-User: ?1``),
    or it came from the shop's own pages (``Sec-Fetch-Site: same-origin``)."""
    headers = request.headers
    if headers.get("Sec-Fetch-User", "").strip() == "?1":
        return True
    return headers.get("Sec-Fetch-Site", "").strip().lower() == "same-origin"


def confirmed() -> str:
    """The nonce of this POST's confirmation token (field ``cart_confirm``), checked against
    this URL; ConfirmationRequired when it is missing, expired or another URL's."""
    fields = form_fields()
    if fields is None and request.mimetype in FORM_TYPES:
        fields = read_body()
    token = (fields or {}).get(CONFIRM_FIELD)
    if not isinstance(token, str) or not token:
        raise ConfirmationRequired("Open the link again and confirm on its page.")
    try:
        return read_confirm_token(current_app, _target(), token)
    except CartError:
        raise ConfirmationRequired("This page has expired: open the link again.") from None


def _target() -> str:
    """What a confirmation token is bound to: this URL's path and query."""
    return request.path + "?" + request.query_string.decode("latin-1")


def _speculative() -> bool:
    """A prefetch or prerender: the browser loads the page before (or without) a click.
    It sends ``navigate``/``document`` too, so its purpose headers decide."""
    for name in ("Sec-Purpose", "Purpose", "X-Moz", "X-Purpose"):
        if "prefetch" in request.headers.get(name, "").lower():
            return True
    return False


def confirmation_page(
    title: str,
    button: str,
    lines: list[dict[str, Any]] | None = None,
    message: str | None = None,
    *,
    status: int = 200,
) -> Response:
    """``flask_cart/confirm.html``: one button that POSTs back to this URL with a
    confirmation token (and Flask-WTF's token when CSRFProtect is on); `lines` (``name``,
    ``quantity``, optionally ``price``) and `message` say what it brings."""
    action = quote(request.script_root + request.path, safe="/:@!$&'()*+,;=-._~")
    if request.query_string:
        action += "?" + request.query_string.decode("latin-1")
    return render_confirmation(
        title,
        button,
        action,
        csrf_token=_csrf_token(),
        lines=lines,
        confirm_token=confirm_token(current_app, _target()),
        message=message,
        status=status,
    )


class CsrfToken(str):
    """Flask-WTF's token as the page's ``csrf_token``: the text, and callable like Flask-WTF's
    own template global ``csrf_token()``, which a shop's layout may call (the page's
    variable would otherwise hide that global)."""

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


def _csrf_token() -> str | None:
    if "csrf" not in current_app.extensions:  # Flask-WTF's CSRFProtect is not on
        return None
    from flask_wtf.csrf import generate_csrf  # only installed where CSRFProtect is used

    return CsrfToken(generate_csrf())


__all__ = [
    "NOT_CONFIRMED",
    "Follow",
    "check_navigation",
    "confirmation_page",
    "confirmed",
    "follow_or_confirm",
    "person_started",
    "same_site_url",
    "wants_page",
]
