"""Cleanup for the SQL store: statistics, and expired carts deleted in batches.

Each batch, in its own transaction:

1. selects at most `batch_size` primary keys of due carts of one kind, through the index
   ``ix_<table>_cleanup`` on ``(is_guest, updated_at)``, oldest first, continuing from
   where the previous batch ended (so dead index entries are not walked again);
   on PostgreSQL (and other databases that have it) with ``FOR UPDATE SKIP LOCKED``, so
   two cleanups at once take disjoint batches and never wait for each other or for a
   cart being changed;
2. deletes those keys with the expiry condition repeated in the DELETE's WHERE: a cart
   changed between 1 and 2 no longer matches and survives (this is what protects it on
   SQLite, where step 1 takes no lock).

Only one batch of keys is ever held in memory, whatever the table size.

A login merge's tombstone (a row at version 0: no cart, see SQLStore.bury) is not a cart:
statistics and the passes above leave it out, and a run deletes the tombstones whose hour
(TOMBSTONE_SECONDS) is past first, uncounted, as it does expired change-id records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .base import TOMBSTONE_SECONDS, CartStats, CleanupResult, Progress

if TYPE_CHECKING:
    from .sql import SQLStore

#: Dialects whose SELECT ... FOR UPDATE SKIP LOCKED SQLAlchemy renders.
SKIP_LOCKED_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "oracle"})
#: Bound parameters per DELETE (SQLite before 3.32 allows 999).
DELETE_CHUNK = 900

#: Called between selecting a batch and deleting it (tests use it to touch a cart there).
BatchHook = Callable[[Sequence[Any]], None]


def due_condition(table: sa.Table, *, is_guest: bool, cutoff: datetime) -> sa.ColumnElement[bool]:
    """Carts of one kind last changed strictly before `cutoff` (served by the cleanup index);
    never a tombstone."""
    c = table.c
    return sa.and_(
        c.is_guest == sa.literal(is_guest, sa.Boolean()), c.updated_at < cutoff, c.version > 0
    )


def expired_tombstones(table: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
    """Tombstones past their expiry (served by the cleanup index: guest rows made at least
    TOMBSTONE_SECONDS ago)."""
    c = table.c
    return sa.and_(
        c.is_guest == sa.literal(True, sa.Boolean()),
        c.updated_at <= now - timedelta(seconds=TOMBSTONE_SECONDS),
        c.version == 0,
        c.expires_at <= now,
    )


def select_batch(
    table: sa.Table,
    *,
    is_guest: bool,
    cutoff: datetime,
    batch_size: int,
    after: datetime | None = None,
    dialect: str = "",
) -> sa.Select[Any]:
    """The statement choosing one batch: ids of due carts, oldest first, from `after` on."""
    c = table.c
    stmt = sa.select(c.id, c.updated_at).where(
        due_condition(table, is_guest=is_guest, cutoff=cutoff)
    )
    if after is not None:
        stmt = stmt.where(c.updated_at >= after)
    stmt = stmt.order_by(c.updated_at).limit(batch_size)
    if dialect in SKIP_LOCKED_DIALECTS:
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt


def cart_stats(
    store: SQLStore,
    *,
    now: datetime,
    guest_cutoff: datetime,
    customer_cutoff: datetime,
    sealed_cutoff: datetime | None = None,
) -> CartStats:
    """One aggregate query over the table; deletes nothing."""
    c = store.table.c

    def count_if(condition: sa.ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    guest = c.is_guest == sa.literal(True, sa.Boolean())
    customer = c.is_guest == sa.literal(False, sa.Boolean())
    stmt = sa.select(
        sa.func.count(),
        count_if(guest),
        count_if(c.updated_at >= now - timedelta(days=1)),
        count_if(c.updated_at >= now - timedelta(days=7)),
        sa.func.min(c.updated_at),
        count_if(sa.and_(guest, c.updated_at < guest_cutoff)),
        count_if(sa.and_(customer, c.updated_at < customer_cutoff)),
    ).select_from(store.table)
    stmt = stmt.where(c.version > 0)  # a tombstone (see SQLStore.bury) is no cart
    with store._errors(), store.engine.connect() as conn:
        row = conn.execute(stmt).one()
    total, guests, day, week, oldest, due_guest, due_customer = row
    return CartStats(
        total=int(total),
        guest=int(guests),
        customer=int(total) - int(guests),
        changed_24h=int(day),
        changed_7d=int(week),
        oldest=oldest,
        due_guest=int(due_guest),
        due_customer=int(due_customer),
    )


def delete_expired(
    store: SQLStore,
    *,
    guest_cutoff: datetime,
    customer_cutoff: datetime,
    batch_size: int,
    dry_run: bool = False,
    progress: Progress | None = None,
    sealed_cutoff: datetime | None = None,
    on_batch: BatchHook | None = None,
) -> CleanupResult:
    """Delete guest then customer carts past their cut-off, in batches of `batch_size`.

    Merge-sealed leftovers need no pass of their own here: the SQL store seals a cart by
    changing its row, so a leftover ages out under its kind's retention like any cart.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    result = CleanupResult(dry_run=dry_run)
    kinds = (("guest", True, guest_cutoff), ("customer", False, customer_cutoff))
    if dry_run:
        for kind, is_guest, cutoff in kinds:
            result.add(kind, _count_due(store, is_guest=is_guest, cutoff=cutoff))
        result.examined = result.total
        return result
    total = None
    if progress is not None:
        total = sum(_count_due(store, is_guest=g, cutoff=cut) for _, g, cut in kinds)
        progress(0, total)

    def report(done: int) -> None:
        if progress is not None:
            progress(done, total)

    delete_tombstones(store, batch_size=batch_size)

    for kind, is_guest, cutoff in kinds:
        _delete_kind(
            store,
            result,
            kind,
            is_guest=is_guest,
            cutoff=cutoff,
            batch_size=batch_size,
            on_batch=on_batch,
            progress=report,
        )
    return result


def delete_tombstones(store: SQLStore, *, batch_size: int) -> int:
    """Delete the expired tombstones, at most `batch_size` per transaction; how many (they
    are not carts: no result counts them)."""
    table = store.table
    condition = expired_tombstones(table, store.clock())
    deleted = 0
    while True:
        with store._errors(), store.engine.begin() as conn:
            ids = conn.execute(sa.select(table.c.id).where(condition).limit(batch_size))
            chunk = [row.id for row in ids]
            if chunk:
                done = conn.execute(sa.delete(table).where(table.c.id.in_(chunk), condition))
                deleted += done.rowcount
        if len(chunk) < batch_size:
            return deleted


def _count_due(store: SQLStore, *, is_guest: bool, cutoff: datetime) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(store.table)
        .where(due_condition(store.table, is_guest=is_guest, cutoff=cutoff))
    )
    with store._errors(), store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _delete_kind(
    store: SQLStore,
    result: CleanupResult,
    kind: str,
    *,
    is_guest: bool,
    cutoff: datetime,
    batch_size: int,
    on_batch: BatchHook | None,
    progress: Callable[[int], None],
) -> None:
    table = store.table
    condition = due_condition(table, is_guest=is_guest, cutoff=cutoff)
    after: datetime | None = None
    while True:
        with store._errors(), store.engine.begin() as conn:
            stmt = select_batch(
                table,
                is_guest=is_guest,
                cutoff=cutoff,
                batch_size=batch_size,
                after=after,
                dialect=conn.dialect.name,
            )
            rows = conn.execute(stmt).all()
            if not rows:
                return
            ids = [row.id for row in rows]
            if on_batch is not None:
                on_batch(ids)
            deleted = 0
            for start in range(0, len(ids), DELETE_CHUNK):
                chunk = ids[start : start + DELETE_CHUNK]
                deleted += conn.execute(
                    sa.delete(table).where(table.c.id.in_(chunk), condition)
                ).rowcount
        result.add(kind, deleted)
        result.examined += len(ids)
        result.batches += 1
        progress(result.total)
        newest = rows[-1].updated_at
        if len(rows) < batch_size or (deleted == 0 and newest == after):
            return
        after = newest
