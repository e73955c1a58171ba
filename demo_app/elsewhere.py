"""What changed in the cart on another device since this browser last showed or changed it.

flask-cart lets a browser serve its cached copy of the cart inside the sync window; the
cart and checkout pages read the store instead (``current_cart.refresh()``). To say what
happened meanwhile ("Enamel mug was removed on another device"), the shop keeps in its
signed session the lines this browser last showed on those pages or last changed itself,
and compares them with the store's cart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, session
from flask_login import current_user

from .models import Order, db

SEEN = "demo_cart_seen"


def owner() -> str:
    """Whose cart the record is about: a customer's, or this browser's guest cart."""
    if current_user.is_authenticated:
        return f"customer:{current_user.get_id()}"
    return "guest"


def quantities(items: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """product id -> units, of `Cart.get()` items."""
    return {str(pid): int(details.get("quantity", 0)) for pid, details in items.items()}


def remember(items: Mapping[str, Mapping[str, Any]]) -> None:
    """This browser shows (or just made) these lines of its cart."""
    if not has_request_context():
        return
    lines = quantities(items)
    record = session.get(SEEN)
    who = owner()
    if isinstance(record, dict) and record.get("owner") == who and record.get("lines") == lines:
        return  # unchanged: no new session cookie
    session[SEEN] = {"owner": who, "lines": lines, "at": int(time.time())}


def last_seen() -> tuple[dict[str, int], float] | None:
    """The lines this browser last showed or changed of its owner's cart, and when."""
    record = session.get(SEEN)
    if not isinstance(record, dict) or record.get("owner") != owner():
        return None
    lines = record.get("lines")
    if not isinstance(lines, dict):
        return None
    try:
        return {str(k): int(v) for k, v in lines.items()}, float(record.get("at", 0))
    except (TypeError, ValueError):
        return None


def order_since(moment: float) -> int | None:
    """The number of the customer's newest order placed after `moment`, if any."""
    if not current_user.is_authenticated:
        return None
    since = datetime.fromtimestamp(moment, timezone.utc).replace(tzinfo=None)
    newest = db.session.execute(
        sa.select(Order.id, Order.created_at)
        .where(Order.user_id == current_user.id)
        .order_by(Order.id.desc())
        .limit(1)
    ).first()
    if newest is None:
        return None
    created = newest.created_at
    if created.tzinfo is not None:
        created = created.astimezone(timezone.utc).replace(tzinfo=None)
    return int(newest.id) if created >= since else None


def notes(
    before: Mapping[str, int] | None,
    since: float,
    now: Mapping[str, int],
    name_of: Callable[[str], str],
) -> list[str]:
    """One sentence per change between what this browser showed and the store's cart."""
    if before is None or dict(before) == dict(now):
        return []
    if before and not now:
        order = order_since(since)
        if order is not None:
            return [f"Your cart was checked out on another device (order #{order})."]
        return ["Your cart was emptied on another device."]
    found = []
    for product_id, had in before.items():
        name = name_of(product_id)
        has = now.get(product_id)
        if has is None:
            found.append(f"{name} was removed on another device.")
        elif has != had:
            found.append(
                f"{name} was changed on another device: {has} in your cart now, not {had}."
            )
    for product_id in now:
        if product_id not in before:
            found.append(f"{name_of(product_id)} was added on another device.")
    return found
