"""The sync window: a signed snapshot of the browser's carts in a cookie of its own.

The snapshot holds, per instance, the owner identifier, the store version, the time the
store was last asked (or written), the update time and compact lines. It is decoded only
when the cart is touched (a page that never looks at the cart pays nothing), trusted for
``CART_SYNC_SECONDS`` after the check, and never written back to the store: a change is a
delta on the store, whose answer replaces the snapshot. A snapshot that would make the
cookie larger than ``MAX_SNAPSHOT_BYTES`` is not kept; the cart is then read from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flask import Request, Response, current_app
from itsdangerous import BadData, URLSafeSerializer

from .identity import cookie_secure, signing_keys
from .lines import CartState, Line, lines_to_json

if TYPE_CHECKING:
    from .manager import Settings

SYNC_SALT = "flask-cart.sync"
MAX_SNAPSHOT_BYTES = 3000


@dataclass(frozen=True)
class Entry:
    """One instance's cached cart: whose it is, when the store was last asked, what it said."""

    identifier: str
    checked_at: float
    state: CartState

    def fresh(self, identifier: str, now: float, window: int) -> bool:
        return self.identifier == identifier and 0 <= now - self.checked_at < window


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(current_app), salt=SYNC_SALT)


def _ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0


def encode_entry(entry: Entry) -> list[Any]:
    state = entry.state
    return [
        entry.identifier,
        state.version,
        int(entry.checked_at * 1000),
        _ms(state.updated_at),
        state.customer_id,
        lines_to_json(state.lines),
    ]


def decode_entry(data: Any) -> Entry:
    """An entry from its JSON form; ValueError, TypeError, KeyError or IndexError if bad."""
    identifier, version, checked_ms, updated_ms, customer_id, rows = data
    lines = {}
    for product_id, quantity, unit_cost, extra in rows:
        if not isinstance(extra, dict):
            raise TypeError("line details must be an object")
        lines[str(product_id)] = Line(str(product_id), int(quantity), str(unit_cost), extra)
    updated = datetime.fromtimestamp(updated_ms / 1000, timezone.utc) if updated_ms else None
    state = CartState(
        lines=lines,
        version=int(version),
        updated_at=updated,
        customer_id=None if customer_id is None else str(customer_id),
    )
    return Entry(str(identifier), int(checked_ms) / 1000, state)


def read_snapshot(request: Request, settings: Settings) -> dict[str, Entry]:
    """The snapshot cookie's entries by instance; {} when absent, bad or badly signed."""
    raw = request.cookies.get(settings.sync_cookie_name)
    if not raw or len(raw) > 2 * MAX_SNAPSHOT_BYTES:
        return {}
    try:
        data = _serializer().loads(raw)
    except BadData:
        return {}
    if not isinstance(data, dict):
        return {}
    entries = {}
    for instance, item in data.items():
        try:
            entries[str(instance)] = decode_entry(item)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError):
            continue
    return entries


def dump_snapshot(entries: Mapping[str, Entry], limit: int = MAX_SNAPSHOT_BYTES) -> str | None:
    """The cookie value for `entries`, leaving out the largest until it fits; None if empty."""
    encoded = {instance: encode_entry(entry) for instance, entry in entries.items()}
    serializer = _serializer()
    while encoded:
        value = serializer.dumps(encoded)
        if len(value) <= limit:
            return str(value)
        largest = max(encoded, key=lambda name: len(str(encoded[name])))
        del encoded[largest]
    return None


def write_snapshot(
    response: Response, request: Request, settings: Settings, value: str | None
) -> None:
    """Set the snapshot cookie (lifetime: the sync window) or delete it when `value` is None."""
    secure = cookie_secure(settings, request)
    if value is None:
        if settings.sync_cookie_name in request.cookies:
            response.delete_cookie(
                settings.sync_cookie_name,
                path="/",
                secure=secure,
                httponly=True,
                samesite=settings.cookie_samesite,
            )
        return
    response.set_cookie(
        settings.sync_cookie_name,
        value,
        max_age=settings.sync_seconds,
        path="/",
        secure=secure,
        httponly=True,
        samesite=settings.cookie_samesite,
    )
