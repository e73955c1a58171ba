"""The sync window: a signed snapshot of each cart instance in a cookie of its own.

A snapshot holds the owner identifier, the store version, the time the store was last
asked (or written), the update time and compact lines. It is read only when that cart is
touched (a page that never looks at the cart pays nothing), trusted for
``CART_SYNC_SECONDS`` after the check, and never written back to the store: a change is a
delta on the store, whose answer replaces the snapshot without the old one being read.
One cookie per instance (``cart_sync`` for "cart", ``cart_sync_<n>`` for the n-th other
instance), each signed with a salt naming its instance. A snapshot larger than
``MAX_SNAPSHOT_BYTES`` is not kept; the cart is then read from the store.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response

from .cookies import set_cookie
from .identity import cookie_secure
from .lines import CartState, Line, make_line
from .signing import sign, unsign

if TYPE_CHECKING:
    from .config import Settings

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


def cookie_name(settings: Settings, instance: str) -> str:
    """The snapshot cookie of `instance` (cookie names cannot hold any instance name)."""
    index = settings.instances.index(instance)
    return settings.sync_cookie_name if index == 0 else f"{settings.sync_cookie_name}_{index}"


def _epoch_ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0


def encode_entry(entry: Entry) -> list[Any]:
    state = entry.state
    return [
        entry.identifier,
        state.version,
        int(entry.checked_at * 1000),
        _epoch_ms(state.updated_at),
        state.customer_id,
        [_row(line) for line in state.lines.values()],
    ]


def _row(line: Line) -> list[Any]:
    """A line as [product_id, quantity, unit_cost, extra], or with a fifth element when
    re-pricing's usual flags (`price_changed` False, then `available` True) are left out of
    `extra`: where they stood, so that reading puts them back in the same order."""
    extra = line.extra
    if extra.get("price_changed") is False and extra.get("available") is True:
        keys = list(extra)
        at = keys.index("price_changed")
        if keys[at + 1 : at + 2] == ["available"]:
            rest = dict(extra)
            del rest["price_changed"], rest["available"]
            return [line.product_id, line.quantity, line.unit_cost, rest, at]
    return [line.product_id, line.quantity, line.unit_cost, dict(extra)]


def _with_flags(rest: dict[str, Any], at: int) -> dict[str, Any]:
    """`rest` with the usual flags put back at position `at`."""
    if at >= len(rest):  # the usual place: after the stored details, before no line field
        return {**rest, "price_changed": False, "available": True}
    items = list(rest.items())
    items[at:at] = [("price_changed", False), ("available", True)]
    return dict(items)


def decode_entry(data: Any) -> Entry:
    """An entry from its JSON form; ValueError, TypeError, KeyError or IndexError if bad."""
    identifier, version, checked_ms, updated_ms, customer_id, rows = data
    lines = {}
    for row in rows:
        product_id, quantity, unit_cost, extra, *flags_at = row
        if not isinstance(extra, dict):
            raise TypeError("line details must be an object")
        if flags_at:
            (at,) = flags_at
            extra = _with_flags(extra, int(at))
        product_id = str(product_id)
        lines[product_id] = make_line(product_id, int(quantity), str(unit_cost), extra)
    updated = datetime.fromtimestamp(updated_ms / 1000, timezone.utc) if updated_ms else None
    state = CartState(
        lines=lines,
        version=int(version),
        updated_at=updated,
        customer_id=None if customer_id is None else str(customer_id),
    )
    return Entry(str(identifier), int(checked_ms) / 1000, state)


def read_entry(app: Flask, request: Request, settings: Settings, instance: str) -> Entry | None:
    """The instance's snapshot; None when absent, too big, badly signed or malformed."""
    raw = request.cookies.get(cookie_name(settings, instance))
    if not raw or len(raw) > MAX_SNAPSHOT_BYTES:
        return None
    payload = unsign(app, f"{SYNC_SALT}.{instance}", raw)
    if payload is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return decode_entry(data)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, binascii.Error):
        return None


#: json.dumps(..., separators=(",", ":"), ensure_ascii=False), its encoder built once.
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: A str as that encoder writes it (quoted and escaped, non-ASCII kept).
_string = encode_basestring


#: The keys of a re-priced line's details in the usual case: a name, the usual flags.
_USUAL_KEYS = ("name", "price_changed", "available")


def entry_json(entry: Entry) -> str:
    """``_compact_json(encode_entry(entry))``, the usual lines (a text name and the usual
    flags) written as text without building their rows first."""
    state = entry.state
    rows = []
    for line in state.lines.values():
        extra = line.extra
        name = extra.get("name")
        if (
            type(name) is str
            and extra.get("price_changed") is False
            and extra.get("available") is True
            and tuple(extra) == _USUAL_KEYS
        ):
            rows.append(
                f"[{_string(line.product_id)},{line.quantity},{_string(line.unit_cost)},"
                f'{{"name":{_string(name)}}},1]'
            )
        else:
            rows.append(_compact_json(_row(line)))
    head = _compact_json(
        [
            entry.identifier,
            state.version,
            int(entry.checked_at * 1000),
            _epoch_ms(state.updated_at),
            state.customer_id,
        ]
    )
    return f"{head[:-1]},[{','.join(rows)}]]"


def dump_entry(app: Flask, instance: str, entry: Entry) -> str | None:
    """The cookie value of `entry`; None when it would be larger than MAX_SNAPSHOT_BYTES."""
    text = entry_json(entry)
    # "replace": text UTF-8 cannot encode (a lone surrogate a shop stored) becomes "?".
    data = text.encode("utf-8", "replace")
    payload = base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    if len(payload) > MAX_SNAPSHOT_BYTES - 40:
        return None
    return sign(app, f"{SYNC_SALT}.{instance}", payload)


def write_entry(
    response: Response, request: Request, settings: Settings, instance: str, value: str | None
) -> None:
    """Set the instance's snapshot cookie, or delete it (None).

    The snapshot is trusted for the sync window only (its check time is inside it), but the
    cookie lives as long as a guest cart does: while the store is down, the last copy is what
    the shop's pages show (``current_cart.unavailable``)."""
    name = cookie_name(settings, instance)
    secure = cookie_secure(settings, request)
    if value is None:
        if name in request.cookies:
            response.delete_cookie(
                name, path="/", secure=secure, httponly=True, samesite=settings.cookie_samesite
            )
        return
    set_cookie(
        response,
        name,
        value,
        max_age=settings.guest_ttl,
        secure=secure,
        samesite=settings.cookie_samesite,
    )
