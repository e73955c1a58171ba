"""The HTML pages flask-cart shows shoppers, rendered from overridable templates.

- ``flask_cart/layout.html``: the shell (blocks ``title``, ``head``, ``content``);
- ``flask_cart/confirm.html``: "click to confirm" (``title``, ``button``, ``action``,
  ``csrf_token``, ``confirm_token``, ``lines``, ``message``);
- ``flask_cart/error.html``: a page that could not be shown (``error`` with ``status``,
  ``code``, ``message``; ``back_url``).

They render with Flask's ``render_template``, so a shop's own
``templates/flask_cart/*.html`` win over the package's. In an app where the package's
folder is not on the template path (flask-cart's routes off, or no CartManager at all) the
package's own copies are used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flask import Response, render_template
from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape

log = logging.getLogger("flask_cart")

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Headers of every page flask-cart answers: never framed, no Referer off the site.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}


#: The confirmation page's field with its signed single-use token.
CONFIRM_FIELD = "cart_confirm"


@dataclass(frozen=True)
class PageError:
    """What ``flask_cart/error.html`` shows: the status, the JSON error code and a message
    in plain words (never a server's detail)."""

    status: int
    code: str
    message: str


@cache
def _own_templates() -> Environment:
    """The package's templates alone, for apps whose template path does not include them."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True)
    )


def render(template: str, **context: Any) -> str:
    """`template` as the app finds it (a shop's override first), else the package's copy."""
    try:
        return render_template(template, **context)
    except TemplateNotFound as exc:
        if exc.name not in _own_names():  # a template of the shop's is missing
            raise
    return _own_templates().get_template(template).render(**context)


@cache
def _own_names() -> frozenset[str]:
    folder = TEMPLATES / "flask_cart"
    return frozenset("flask_cart/" + path.name for path in folder.glob("*.html"))


def page(body: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    return response


def confirmation_page(
    title: str,
    button: str,
    action: str,
    *,
    csrf_token: str | None = None,
    lines: list[dict[str, Any]] | None = None,
    confirm_token: str = "",
    message: str | None = None,
    status: int = 200,
) -> Response:
    """``flask_cart/confirm.html``: one button that POSTs to `action` with `confirm_token`
    (field ``cart_confirm``); `lines` (``name``, ``quantity``, ``price``) and `message`
    (a sentence) say what it does; `status` 403 when it answers a refused post."""
    body = render(
        "flask_cart/confirm.html",
        title=title,
        button=button,
        action=action,
        csrf_token=csrf_token,
        confirm_token=confirm_token,
        confirm_field=CONFIRM_FIELD,
        lines=lines,
        message=message,
    )
    return page(body, status)


def error_page(error: PageError, back_url: str) -> Response:
    """``flask_cart/error.html`` with the error's status. A template that fails (a shop's
    layout that reads a store that is down, say) is logged and the package's own page is
    shown instead: an error page never turns into a 500."""
    context = {"error": error, "back_url": back_url}
    try:
        body = render("flask_cart/error.html", **context)
    except Exception:
        log.exception("flask-cart: flask_cart/error.html failed; showing the package's own")
        body = _own_templates().get_template("flask_cart/error.html").render(**context)
    return page(body, error.status)


__all__ = [
    "CONFIRM_FIELD",
    "PAGE_HEADERS",
    "PageError",
    "confirmation_page",
    "error_page",
    "render",
]
