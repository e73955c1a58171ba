"""What the QA "cart status" page shows: who owns the cart, where it lives, how fresh it is.

Each fact is read defensively: a fact the library does not expose (or a store that does
not answer) shows as "n/a" with the reason, and never breaks the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import request
from flask_login import current_user

from flask_cart import CartError, current_cart

from .hooks import cart_settings


@dataclass
class Fact:
    label: str
    value: str
    hint: str = ""


def seconds(value: float) -> str:
    value = int(value)
    if value < 120:
        return f"{value} s"
    if value < 7200:
        return f"{round(value / 60)} min"
    if value < 172800:
        return f"{round(value / 3600)} h"
    return f"{round(value / 86400)} days"


def fact(label: str, read: Callable[[], Any], hint: str = "") -> Fact:
    try:
        value = read()
    except Exception as error:  # a QA page shows the failure instead of failing
        return Fact(label, "n/a", f"{type(error).__name__}: {error}")
    if value is None:
        return Fact(label, "n/a", hint)
    return Fact(label, str(value), hint)


def owner() -> str:
    if current_user.is_authenticated:
        return f"customer {current_user.email} (user id {current_user.id})"
    name = cart_settings().cookie_name
    if has_cart_yet():
        return f"guest (signed {name} cookie)"
    return "guest without a cart yet (the cookie is set on the first change)"


def has_cart_yet() -> bool:
    name = cart_settings().cookie_name
    return bool(current_user.is_authenticated or request.cookies.get(name))


def identifier() -> str:
    return current_cart.identifier if has_cart_yet() else "none yet"


def expires() -> str | None:
    ttl = current_cart.get_ttl() if has_cart_yet() else 0
    return seconds(ttl) if ttl > 0 else None


def store() -> str:
    store = current_cart.store
    kind = type(store).__name__
    engine = getattr(store, "engine", None)
    if engine is not None:
        table = getattr(getattr(store, "table", None), "name", "")
        url = engine.url.render_as_string(hide_password=True)
        return f"{kind}: {url}" + (f", table {table}" if table else "")
    client = getattr(store, "client", None) or getattr(store, "redis", None)
    prefix = getattr(store, "prefix", "")
    if client is not None:
        kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
        where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
        return f"{kind}: redis://{where}" + (f", key prefix {prefix!r}" if prefix else "")
    return kind


def updated() -> str | None:
    when = current_cart.state.updated_at
    if when is None:
        return None
    age = (datetime.now(timezone.utc) - when).total_seconds()
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({seconds(max(age, 0))} ago)"


def freshness() -> tuple[str | None, str]:
    """(sync age, where this request's cart came from), as the request found it."""
    window = cart_settings().sync_seconds
    age = current_cart.sync_age
    if age is None:
        return None, "the store (no cached copy of this cart in this browser)"
    if age < window:
        return seconds(age), f"the browser's cached copy (re-checked after {window} s)"
    return seconds(age), "the store (the cached copy was older than the sync window)"


def store_version() -> int:
    """The version in the store right now (one extra read, for comparison)."""
    return current_cart.stored().version


def describe() -> list[Fact]:
    window = cart_settings().sync_seconds
    try:
        age, source = freshness()
    except CartError as error:  # the store did not answer: the page still shows
        age, source, why = None, None, error.message
    else:
        why = "no cached copy in this browser"
    return [
        fact("Owner", owner),
        fact("Cart identifier", identifier),
        fact("Instance", lambda: current_cart.instance),
        fact("Store", store),
        fact("Served from", lambda: source, why),
        fact("Version (this page)", lambda: current_cart.version, "no cart stored yet"),
        fact("Version (store now)", store_version),
        fact("Lines / units", lambda: f"{current_cart.count()} / {current_cart.quantity()}"),
        fact("Total", lambda: f"{current_cart.total_cost()} {cart_settings().currency}"),
        fact("Last change", updated, "no cart stored yet"),
        fact("Expires in", expires, "no cart stored yet"),
        fact("Sync window", lambda: f"{window} s" if window is not None else None),
        fact("Sync age", lambda: age, why),
    ]
