"""The SQL store's change-id records: the table ``<table>_keys``, one row per change sent
with an id (an HTTP Idempotency-Key) to one cart, kept until ``expires_at`` (KEY_SECONDS
after the change) whatever happens to the cart meanwhile.

Each function runs inside the caller's transaction, after the cart's row is locked, so a
change checks and records its id in the same atomic step; `flask cart cleanup` deletes
expired records (``sweep``), through the index on ``expires_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .base import CartKey
from .sql_dialects import KeyString, UTCDateTime

if TYPE_CHECKING:
    from .sql import SQLStore

#: Records deleted per statement by the sweep.
SWEEP_BATCH = 1000


def keys_table(metadata: sa.MetaData, cart_table_name: str) -> sa.Table:
    """The change-id records beside the carts table `cart_table_name` (reused when defined)."""
    name = f"{cart_table_name}_keys"
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(
        name,
        metadata,
        sa.Column("identifier", KeyString(255), primary_key=True),
        sa.Column("instance", KeyString(64), primary_key=True),
        sa.Column("op", KeyString(64), primary_key=True),
        sa.Column("fingerprint", KeyString(64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Index(f"ix_{name}_expiry", "expires_at"),
    )


def _where(table: sa.Table, key: CartKey) -> Any:
    c = table.c
    return sa.and_(c.identifier == key.identifier, c.instance == key.instance)


def find(conn: Connection, table: sa.Table, key: CartKey, op: str) -> Any:
    """The record of `op` for the cart (``fingerprint``, ``expires_at``; maybe expired), or
    None."""
    return conn.execute(
        sa.select(table.c.fingerprint, table.c.expires_at).where(
            _where(table, key), table.c.op == op
        )
    ).first()


def record(
    conn: Connection,
    table: sa.Table,
    key: CartKey,
    op: str,
    fingerprint: str,
    expires_at: datetime,
    *,
    over_expired: bool = False,
) -> None:
    """Record `op` for the cart until `expires_at` (`over_expired`: replacing an expired
    record of it)."""
    if over_expired:
        conn.execute(sa.delete(table).where(_where(table, key), table.c.op == op))
    conn.execute(
        sa.insert(table).values(
            identifier=key.identifier,
            instance=key.instance,
            op=op,
            fingerprint=fingerprint,
            expires_at=expires_at,
        )
    )


def carry(
    conn: Connection, table: sa.Table, source: CartKey, target: CartKey, now: datetime
) -> None:
    """Copy the source cart's live records to the target cart (where it has none of them)."""
    c = table.c
    rows = conn.execute(
        sa.select(c.op, c.fingerprint, c.expires_at).where(
            _where(table, source), c.expires_at > now
        )
    ).all()
    if not rows:
        return
    held = {
        r.op: r.expires_at
        for r in conn.execute(
            sa.select(c.op, c.expires_at).where(
                _where(table, target), c.op.in_([r.op for r in rows])
            )
        )
    }
    for r in rows:
        if r.op in held and held[r.op] > now:
            continue
        record(conn, table, target, r.op, r.fingerprint, r.expires_at, over_expired=r.op in held)


def sweep(store: SQLStore, now: datetime) -> int:
    """Delete expired records, about SWEEP_BATCH per transaction, oldest first; the number
    deleted (reported nowhere: records are not carts)."""
    table = store.keys_table
    expires = table.c.expires_at
    deleted = 0
    while True:
        with store._errors(), store.engine.begin() as conn:
            bound = conn.execute(
                sa.select(expires)
                .where(expires <= now)
                .order_by(expires)
                .offset(SWEEP_BATCH - 1)
                .limit(1)
            ).scalar_one_or_none()
            done = conn.execute(sa.delete(table).where(expires <= (bound or now))).rowcount
        deleted += done
        if bound is None or done == 0:
            return deleted
