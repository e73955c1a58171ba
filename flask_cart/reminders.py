"""Abandoned-cart reminders: a guest's contact address, unsubscribe links, and the e-mails.

- ``check_email``: the address a guest leaves with their cart (``current_cart.set_email``).
- ``unsubscribe_links``: signed ``GET /cart/unsubscribe/<token>`` URLs naming one cart (its
  key and uid, so a link for a cart checked out long ago cannot stop a new one). They do
  not expire: an unsubscribe link in an old e-mail must still work.
- ``Mailer``: renders ``flask_cart/reminder.txt`` and ``flask_cart/reminder.html`` (a
  shop's own copies win) and sends each reminder through the app's Flask-Mail extension
  with ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058) headers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_request_context, render_template, url_for
from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape

from .errors import InvalidInput, InvalidLink
from .stores.base import CartKey
from .tokens import read_token, token_maker

log = logging.getLogger("flask_cart")

PURPOSE = "unsubscribe"
ENDPOINT = "flask_cart.unsubscribe"
MAX_EMAIL_CHARS = 254
#: Characters an address may not hold: they would change what a header means.
_UNSAFE = frozenset('<>,;:"()[]\\')
_PLACEHOLDER = "TOKEN.PLACEHOLDER"
TEMPLATES = Path(__file__).resolve().parent / "templates"
TEXT_TEMPLATE = "flask_cart/reminder.txt"
HTML_TEMPLATE = "flask_cart/reminder.html"


def check_email(address: object) -> str:
    """A contact address as kept: one ``@``, no spaces or control characters, at most 254
    characters, a domain with a dot; surrounding spaces are dropped. InvalidInput (400)
    for anything else."""
    text = address.strip() if isinstance(address, str) else None
    bad = InvalidInput("the e-mail address is not valid (name@example.com, at most 254 characters)")
    if not text or len(text) > MAX_EMAIL_CHARS or text.count("@") != 1:
        raise bad
    if not text.isprintable() or any(ch.isspace() or ch in _UNSAFE for ch in text):
        raise bad
    local, domain = text.split("@")
    labels = domain.split(".")
    if not local or len(local) > 64 or len(labels) < 2 or not all(labels):
        raise bad
    if domain.startswith("-") or local.startswith(".") or local.endswith(".") or ".." in local:
        raise bad
    return text


# --- unsubscribe links ------------------------------------------------------------------


def unsubscribe_payload(key: CartKey, uid: str) -> list[str]:
    return [key.identifier, key.instance, uid]


def unsubscribe_links(app: Flask | None = None) -> Callable[[CartKey, str], str]:
    """``make(key, uid)``: the cart's signed unsubscribe URL (absolute; outside a request
    SERVER_NAME names the host, else RuntimeError)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    token_of = token_maker(app, PURPOSE, None)
    if not has_request_context() and not app.config.get("SERVER_NAME"):
        raise RuntimeError(
            "unsubscribe links outside a request need the shop's host: set SERVER_NAME "
            "(and PREFERRED_URL_SCHEME) in the app's config"
        )
    before, _, after = url_for(ENDPOINT, token=_PLACEHOLDER, _external=True).rpartition(
        _PLACEHOLDER
    )

    def make(key: CartKey, uid: str) -> str:
        return before + token_of(unsubscribe_payload(key, uid)) + after

    return make


def read_unsubscribe(token: str) -> tuple[CartKey, str]:
    """The cart (key, uid) an unsubscribe token names; InvalidLink when it is not one."""
    data = read_token(current_app, PURPOSE, token)
    if (
        not isinstance(data, list)
        or len(data) != 3
        or not all(isinstance(part, str) and part for part in data)
    ):
        raise InvalidLink("this link is not valid")
    return CartKey(data[0], data[1]), data[2]


# --- the e-mails ------------------------------------------------------------------------


@cache
def _own_templates() -> Environment:
    """The package's reminder templates (autoescaped for HTML only)."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    )


def render(template: str, context: Mapping[str, Any]) -> str:
    """`template` as the app finds it (a shop's override first), else the package's copy."""
    try:
        return render_template(template, **context)
    except TemplateNotFound as exc:
        if exc.name != template:
            raise
    return _own_templates().get_template(template).render(**context)


class UnfoldedHeader(str):
    """A header value the message writes on one line as it is: ``List-Unsubscribe`` is a
    structured field (``<url>``) where the RFC 2047 encoded words a long value would be
    folded into are not allowed. The value is ASCII, has no line break, and stays well
    under RFC 5322's 998 characters."""

    name: str

    def __new__(cls, name: str, value: str) -> UnfoldedHeader:
        if not value.isascii() or not value.isprintable() or len(name) + len(value) > 990:
            raise ValueError(f"{name} cannot be written on one line: {value!r}")
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: Any) -> str:
        """The email package's hook for header objects: the field on one line."""
        return f"{self.name}: {self}{policy.linesep}"


class MailNotConfigured(RuntimeError):
    """``--send`` without the app's Flask-Mail extension."""


class Mailer:
    """Sends reminders through the app's Flask-Mail (``app.extensions["mail"]``)."""

    def __init__(self, app: Flask) -> None:
        mail = app.extensions.get("mail")
        if mail is None or not hasattr(mail, "send"):
            raise MailNotConfigured(
                "sending reminders needs Flask-Mail (pip install 'flask-cart[mail]') and "
                "the app's Mail(app) with MAIL_SERVER and MAIL_DEFAULT_SENDER set"
            )
        try:  # local: Flask-Mail is optional (the mail extra)
            from flask_mail import Message
        except ImportError as exc:  # pragma: no cover - Mail without flask_mail is odd
            raise MailNotConfigured("Flask-Mail is not installed") from exc
        self.app = app
        self.mail = mail
        self.message = Message
        self.shop_name = app.config.get("CART_SHOP_NAME")
        self.subjects: Mapping[str, str] = app.config.get("CART_REMINDER_SUBJECTS") or {}

    def subject(self, stage: str) -> str:
        default = "You left something in your cart"
        if self.shop_name:
            default = f"{default} at {self.shop_name}"
        return str(self.subjects.get(stage, default))

    def send(self, to: str, context: Mapping[str, Any]) -> None:
        """Render and send one reminder to `to`; raises what the mail server answers."""
        unsubscribe = context["unsubscribe_url"]
        message = self.message(
            subject=self.subject(context["stage"]),
            recipients=[to],
            body=render(TEXT_TEMPLATE, context),
            html=render(HTML_TEMPLATE, context),
            extra_headers={
                "List-Unsubscribe": UnfoldedHeader("List-Unsubscribe", f"<{unsubscribe}>"),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        self.mail.send(message)


def reminder_context(
    report: Mapping[str, Any], shop_name: str | None, currency: str
) -> dict[str, Any]:
    """The variables of the reminder templates, from a report's JSON form: stage, lines
    (the available ones, re-priced), total, currency, recovery_url, unsubscribe_url,
    shop_name, customer_id."""
    return {
        "stage": report["stage"],
        "lines": [item for item in report["items"] if item["available"]],
        "total": report["total"],
        "currency": currency,
        "recovery_url": report["recovery_url"],
        "unsubscribe_url": report["unsubscribe_url"],
        "shop_name": shop_name,
        "customer_id": report["customer_id"],
    }
