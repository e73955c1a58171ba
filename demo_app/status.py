"""What the QA "cart status" page shows: who owns the cart, where it lives, how fresh it is.

Each fact is read defensively: a fact the library does not expose (or a store that does
not answer) shows as "n/a" with the reason, and never breaks the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import current_app, request
from flask_login import current_user

from flask_cart import current_cart


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
        return f"{value // 60} min"
    if value < 172800:
        return f"{value // 3600} h"
    return f"{value // 86400} days"


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
    name = current_app.config.get("CART_COOKIE_NAME", "guest_cart_id")
    if request.cookies.get(name):
        return f"guest (signed {name} cookie)"
    return "guest without a cart yet (the cookie is set on the first change)"


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


def sync_age() -> str | None:
    """How old the browser's cached copy is, as the integration reports it."""
    for name in ("sync_age", "snapshot_age"):
        reader = getattr(current_cart, name, None)
        if reader is not None:
            age = reader() if callable(reader) else reader
            return None if age is None else seconds(age)
    return None


def describe() -> list[Fact]:
    window = current_app.config.get("CART_SYNC_SECONDS")
    return [
        fact("Owner", owner),
        fact("Cart identifier", lambda: current_cart.identifier),
        fact("Instance", lambda: current_cart.instance),
        fact("Store", store),
        fact("Version", lambda: current_cart.version, "no cart stored yet"),
        fact("Lines / units", lambda: f"{current_cart.count()} / {current_cart.quantity()}"),
        fact("Total", lambda: f"{current_cart.total_cost()} {current_app.config['CART_CURRENCY']}"),
        fact("Last change", updated, "no cart stored yet"),
        fact("Expires in", lambda: seconds(current_cart.get_ttl()) or None),
        fact("Sync window", lambda: f"{window} s" if window is not None else None),
        fact("Sync age", sync_age, "not exposed by flask-cart"),
    ]
