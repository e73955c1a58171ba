"""Which request may follow a cart link: a top-level navigation, nothing else.

A cart link (``/cart/add/...``, ``/cart/link/...``, ``/cart/recover/...``) is a GET that
changes a cart. Any page on the web can embed it as an image, a script or a frame, or fetch
it, and the browser sends the shop's cookies with those (Flask's session cookie is
``SameSite=None`` by default). So a GET acts only when the browser says it is a top-level
navigation, a link clicked or a URL typed: ``Sec-Fetch-Mode: navigate`` with
``Sec-Fetch-Dest: document``, and not a prefetch or prerender (``Sec-Purpose``,
``Purpose`` or ``X-Moz: prefetch``: the browser loads it before any click). Every other
``Sec-Fetch-*`` request is refused with
:class:`~flask_cart.errors.NotANavigation` and changes nothing. A browser that sends no
``Sec-Fetch-*`` header at all gets a small page with a POST button to the same URL; that
POST goes through the blueprint's same-site check (and Flask-WTF's CSRF check where
``CSRFProtect`` is on). The page may not be framed, so it cannot be clicked blind.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, current_app, request
from markupsafe import escape

from .errors import NotANavigation

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body><main style="font-family: sans-serif; max-width: 30rem; margin: 3rem auto; padding: 0 1rem">
<h1 style="font-size: 1.4rem">{title}</h1>
<form method="post" action="{action}">{csrf}
<button type="submit" style="font-size: 1.1rem; padding: .6rem 1.4rem">{button}</button>
</form></main></body></html>
"""


def follow_or_confirm(title: str, button: str) -> Response | None:
    """None when this request may follow the link; else the page that asks for a click.

    Raises NotANavigation when the browser says the request is not a top-level navigation.
    A POST (the confirmation page's button) may follow: the blueprint has already refused
    it from another site.
    """
    if request.method == "POST":
        return None
    if _speculative():
        raise NotANavigation("a prefetched or prerendered cart link changes nothing")
    mode = request.headers.get("Sec-Fetch-Mode")
    dest = request.headers.get("Sec-Fetch-Dest")
    if mode is None and dest is None:
        return confirmation_page(title, button)
    if request.method == "GET" and mode == "navigate" and dest == "document":
        return None
    raise NotANavigation("a cart link acts only when it is opened as a page (a link clicked)")


def _speculative() -> bool:
    """A prefetch or prerender: the browser loads the page before (or without) a click.
    It sends ``navigate``/``document`` too, so its purpose headers decide."""
    for name in ("Sec-Purpose", "Purpose", "X-Moz", "X-Purpose"):
        if "prefetch" in request.headers.get(name, "").lower():
            return True
    return False


def confirmation_page(title: str, button: str) -> Response:
    """A page whose one button POSTs back to this URL (with Flask-WTF's token when it is on)."""
    action = quote(request.script_root + request.path, safe="/:@!$&'()*+,;=-._~")
    if request.query_string:
        action += "?" + request.query_string.decode("latin-1")
    body = _PAGE.format(
        title=escape(title), button=escape(button), action=escape(action), csrf=_csrf_field()
    )
    response = Response(body, status=200, mimetype="text/html")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _csrf_field() -> str:
    if "csrf" not in current_app.extensions:  # Flask-WTF's CSRFProtect is not on
        return ""
    from flask_wtf.csrf import generate_csrf  # only installed where CSRFProtect is used

    return f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">'


__all__ = ["confirmation_page", "follow_or_confirm"]
