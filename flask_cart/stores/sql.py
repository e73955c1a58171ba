"""SQL store (SQLAlchemy 2): one row per cart, changed under a row lock in one transaction.

Each change upserts the row and locks it (see stores/sql_dialects.py), applies the shared
line rules, and writes the result with a new version. On PostgreSQL an add without an op id
is one statement instead, the rule applied to the JSON content on the server in the same
bounded transaction (stores/sql_one_statement.py), the locking path behind it. The last
MAX_MERGE_MARKERS merge markers (and every signed link's) are kept in the row's JSON content,
so a resent merge is applied once; the ids of changes sent with one are recorded for
KEY_SECONDS in the table ``<table>_keys`` (stores/sql_keys.py), in the change's transaction.

Every call is one transaction bounded by the store's `timeout` (CART_STORE_TIMEOUT; see
stores/sql_calls.py):

- on any engine, the app's own Flask-SQLAlchemy engine included: its statements and lock
  waits (server-side: PostgreSQL ``statement_timeout``/``lock_timeout``, MariaDB
  ``max_statement_time``/``innodb_lock_wait_timeout``), and a client-side deadline
  (stores/sql_watchdog.py) that shuts the connection's socket when the server does not
  answer in time, frozen servers included; only that connection is discarded. An
  exhausted pool answers StoreUnavailable too.
- on flask-cart's own engine (``SQLStore.create_engine``: CART_DATABASE_URI or the SQLite
  default) also the connect (driver connect timeouts; PyMySQL's read and write timeouts)
  and the wait for a pooled connection (``pool_timeout``). On the app's engine a new
  connection and the pool wait follow the app's engine options (set e.g.
  ``connect_args={"connect_timeout": 2}`` and ``pool_timeout`` in
  ``SQLALCHEMY_ENGINE_OPTIONS``).

A deadlock, or a row deleted under the lock path, rolled the transaction back: it is run
again, a few times within the same deadline. Cleanup (stores/sql_cleanup.py) is not bounded
by the timeout, except by PyMySQL's socket timeouts on the own engine.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..errors import CartClosed, IdempotencyKeyReused
from ..lines import (
    CartState,
    Limits,
    Line,
    MergeOutcome,
    Owner,
    apply_add,
    apply_merge,
    apply_set,
    lines_from_json,
    lines_to_json,
)
from . import sql_calls, sql_keys
from . import sql_dialects as dialects
from . import sql_one_statement as one_statement
from .base import (
    KEY_SECONDS,
    LINK_MARKER_PREFIX,
    MAX_MERGE_MARKERS,
    TOMBSTONE_SECONDS,
    AbandonedCart,
    BatchHook,
    CartKey,
    CartStats,
    CartStore,
    CleanupResult,
    Contact,
    Progress,
    Stage,
    fingerprint,
    link_markers,
    tombstone_marker,
)
from .failures import unavailable
from .sql_abandoned import abandoned_table
from .sql_dialects import KeyString, UTCDateTime

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["DEFAULT_TABLE", "SQLStore", "UTCDateTime", "cart_table"]

DEFAULT_TABLE = "flask_cart"
#: The SQLite default's file, in the app's instance folder.
SQLITE_FILE = "flask_cart.sqlite3"
DEFAULT_TIMEOUT = 2.0
T = TypeVar("T")
Rule = Callable[[CartState], tuple[Mapping[str, Line], dict[str, Any]]]


def cart_table(metadata: sa.MetaData, name: str = DEFAULT_TABLE) -> sa.Table:
    """The carts table on `metadata` (reused when already defined there)."""
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("identifier", KeyString(255), nullable=False),
        sa.Column("instance", KeyString(64), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=True),
        sa.Column("is_guest", sa.Boolean, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("identifier", "instance", name=f"uq_{name}_key"),
        sa.Index(f"ix_{name}_cleanup", "is_guest", "updated_at"),
    )


class _Unchanged(Exception):
    """Rolls a write back when it turns out to change nothing."""

    def __init__(self, state: CartState, *, repeat: bool = False) -> None:
        self.state = state
        self.repeat = repeat


@dataclass
class _Written:
    """What one change wrote: the new state, or the state as it was for a repeated op."""

    state: CartState
    repeat: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def _content(
    lines: Mapping[str, Line], uid: str, *, merged: list[str], sealed: bool
) -> dict[str, Any]:
    return {"lines": lines_to_json(lines), "merged": merged, "sealed": sealed, "uid": uid}


def _kept_markers(merged: list[str]) -> list[str]:
    """Every signed-link marker, and the MAX_MERGE_MARKERS most recent others (in order)."""
    others = [m for m in merged if not m.startswith(LINK_MARKER_PREFIX)]
    dropped = set(others[:-MAX_MERGE_MARKERS])
    return [m for m in merged if m not in dropped]


class SQLStore(CartStore):
    """Carts in one SQL table, on the app's Flask-SQLAlchemy `db` or an own engine."""

    def __init__(
        self,
        engine: Engine | Callable[[], Engine],
        *,
        table: sa.Table | None = None,
        table_name: str = DEFAULT_TABLE,
        clock: Callable[[], datetime] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._engine = engine if callable(engine) else (lambda: engine)
        #: Seconds that bound every call of this store (connect, statement, lock wait).
        self.timeout = timeout
        self.table = table if table is not None else cart_table(sa.MetaData(), table_name)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        #: Claims of `flask cart abandoned` (stores/sql_abandoned.py), on the same metadata.
        self.abandoned_table = abandoned_table(self.table.metadata, self.table.name)
        #: Change-id records (stores/sql_keys.py), on the same metadata.
        self.keys_table = sql_keys.keys_table(self.table.metadata, self.table.name)

    @staticmethod
    def create_engine(url: str | sa.URL, *, timeout: float = DEFAULT_TIMEOUT) -> Engine:
        """An engine of flask-cart's own for `url`: connect, every server answer (PyMySQL)
        and the wait for a pooled connection are bounded by `timeout`."""
        url = sa.make_url(url)
        return sa.create_engine(url, **dialects.own_engine_options(url, timeout))

    @classmethod
    def from_config(cls, app: Flask, *, db: Any = None, timeout: float) -> SQLStore:
        """On CART_DATABASE_URI when set; else on `db`'s engine, with the table on
        ``db.metadata`` (so ``db.create_all()`` creates it); else on
        ``sqlite:///<instance_path>/flask_cart.sqlite3``, whose table is created on first use.
        """
        uri = app.config["CART_DATABASE_URI"]
        table_name = app.config["CART_TABLE_NAME"]
        if uri is None and db is not None:
            table = cart_table(db.metadata, table_name)
            sql_keys.keys_table(db.metadata, table_name)
            return cls(lambda: db.engine, table=table, timeout=timeout)
        first_use = uri is None
        if uri is None:
            os.makedirs(app.instance_path, exist_ok=True)
            uri = "sqlite:///" + os.path.join(app.instance_path, SQLITE_FILE)
        engine = cls.create_engine(uri, timeout=timeout)
        store = cls(engine, table_name=table_name, timeout=timeout)
        store.create_on_first_use = first_use
        return store

    @property
    def engine(self) -> Engine:
        return self._engine()

    def create_all(self) -> None:
        """Create the tables (carts, abandoned-cart claims, change-id records) and their
        indexes where missing."""
        with self._errors():
            self.table.create(self.engine, checkfirst=True)
            self.abandoned_table.create(self.engine, checkfirst=True)
            self.keys_table.create(self.engine, checkfirst=True)
            self.table.metadata.tables[f"{self.table.name}_contacts"].create(
                self.engine, checkfirst=True
            )

    def _errors(self) -> AbstractContextManager[None]:
        """Connection failures and timeouts as StoreUnavailable (see sql_calls.errors)."""
        return sql_calls.errors(self._engine)

    def _run(self, work: Callable[[Connection], T], timeout: float | None = None) -> T:
        """`work` in one transaction bounded by the timeout (see sql_calls.run), or by
        `timeout` seconds (what is left of a call's deadline)."""
        return sql_calls.run(self.engine, self.timeout if timeout is None else timeout, work)

    def _where(self, key: CartKey) -> Any:
        t = self.table.c
        return sa.and_(t.identifier == key.identifier, t.instance == key.instance)

    def _decode(self, row: Any, now: datetime) -> CartState:
        """A row as a CartState; a missing or expired row is no cart (version 0)."""
        if row is None or (row.expires_at is not None and row.expires_at <= now):
            return CartState()
        content = row.content or {}
        return CartState(
            lines=lines_from_json(content.get("lines")),
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            customer_id=row.customer_id,
            sealed=bool(content.get("sealed")),
            merged=frozenset(content.get("merged", ())),
            uid=content.get("uid", ""),
        )

    def _lock_row(self, conn: Connection, key: CartKey, owner: Owner | None, now: datetime) -> Any:
        """Lock the cart's row and return it; created first when missing, unless `owner`
        is None (then None when there is no row)."""
        if owner is None:
            if conn.dialect.name == "sqlite":
                # SQLite ignores FOR UPDATE and pysqlite begins no transaction for a SELECT:
                # a no-op UPDATE takes the write lock first, so the read cannot go stale.
                dialects.by_key(conn, self.table, "touch", key)
            return dialects.by_key(conn, self.table, "lock", key).one_or_none()
        values = {
            "identifier": key.identifier,
            "instance": key.instance,
            "content": {"lines": [], "merged": [], "sealed": False},
            "customer_id": owner.customer_id,
            "is_guest": owner.customer_id is None,
            "version": 0,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(seconds=owner.ttl),
        }
        row = dialects.upsert_and_lock(conn, self.table, values)
        if row is None:
            raise sql_calls.Retry()
        return row

    def _change(
        self,
        key: CartKey,
        owner: Owner | None,
        rule: Rule,
        *,
        op: str | None = None,
        change: tuple[Any, ...] = (),
        allow_sealed: bool = False,
        carry: CartKey | None = None,
        first: Callable[[Callable[[Connection], _Written]], Callable[[Connection], _Written]]
        | None = None,
        timeout: float | None = None,
    ) -> _Written:
        """Lock the cart, apply `rule` to it, write the result as the next version.

        `op` (a change id) recorded with the same `change` (its kind and arguments):
        nothing is written and the cart is answered as it is; recorded with another:
        IdempotencyKeyReused. Else `op` is recorded with the change. `owner` None: an
        existing cart only, its owner and lifetime kept (sealing). The rule may return the
        changes ``sealed`` (bool) and ``marker`` (a merge marker to remember); with a marker,
        `carry`'s change-id records and link markers are recorded here too. `first` wraps
        the locking work: it runs in the same transaction and may answer without it (the
        one-statement add, stores/sql_one_statement.py). `timeout`: what is left of a
        call's deadline, instead of the whole store timeout.
        """

        def work(conn: Connection) -> _Written:
            now = self.clock()
            row = self._lock_row(conn, key, owner, now)
            state = self._decode(row, now)
            if owner is None and not state.exists:
                return _Written(state, repeat=True)
            if state.sealed and not allow_sealed:
                raise CartClosed("this cart was merged into another and takes no more changes")
            content = (row.content or {}) if state.exists else {}
            asked = fingerprint(*change) if op is not None else ""
            seen = sql_keys.find(conn, self.keys_table, key, op) if op is not None else None
            if seen is not None and seen.expires_at > now:
                if seen.fingerprint == asked:
                    raise _Unchanged(replace(state, replayed=True), repeat=True)
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for another change of this cart"
                )
            fresh = not state.uid
            if fresh:
                state = replace(state, uid=uuid.uuid4().hex)
            lines, changes = rule(state)  # _Unchanged: rolled back, nothing written
            merged = list(content.get("merged", ()))
            if "marker" in changes:
                carried = self._link_markers(conn, carry, now) if carry is not None else []
                merged += [m for m in carried if m not in merged]
                merged = _kept_markers([*merged, changes["marker"]])
                if carry is not None:
                    sql_keys.carry(conn, self.keys_table, carry, key, now)
            if op is not None:
                expires = now + timedelta(seconds=KEY_SECONDS)
                sql_keys.record(
                    conn, self.keys_table, key, op, asked, expires, over_expired=seen is not None
                )
            sealed = bool(changes.get("sealed", False))
            values: dict[str, Any] = {
                "content": _content(lines, state.uid, merged=merged, sealed=sealed),
                "version": row.version + 1,
                "updated_at": now,
            }
            if owner is not None:
                values.update(
                    customer_id=owner.customer_id,
                    is_guest=owner.customer_id is None,
                    expires_at=now + timedelta(seconds=owner.ttl),
                )
            if fresh:
                values["created_at"] = now
            dialects.update_row(conn, self.table, row.id, values)
            written = CartState(
                lines=dict(lines),
                version=row.version + 1,
                created_at=now if fresh else row.created_at,
                updated_at=now,
                customer_id=owner.customer_id if owner is not None else row.customer_id,
                sealed=sealed,
                merged=frozenset(merged),
                uid=state.uid,
            )
            return _Written(written, info=changes)

        try:
            return self._run(first(work) if first is not None else work, timeout)
        except _Unchanged as unchanged:
            return _Written(unchanged.state, repeat=unchanged.repeat)

    def _link_markers(self, conn: Connection, source: CartKey, now: datetime) -> list[str]:
        """The signed-link markers of the cart at `source` (read in the caller's transaction)."""
        row = dialects.by_key(conn, self.table, "read", source).one_or_none()
        return link_markers(self._decode(row, now)) if row is not None else []

    def op_record(self, key: CartKey, op: str) -> str | None:
        def work(conn: Connection) -> str | None:
            seen = sql_keys.find(conn, self.keys_table, key, op)
            return str(seen.fingerprint) if seen and seen.expires_at > self.clock() else None

        return self._run(work)

    def load(self, key: CartKey) -> CartState:
        def work(conn: Connection) -> CartState:
            row = dialects.by_key(conn, self.table, "read", key).one_or_none()
            return self._decode(row, self.clock())

        return self._run(work)

    def add(
        self, key: CartKey, line: Line, *, owner: Owner, limits: Limits, op: str | None = None
    ) -> CartState:
        def in_one_statement(locking: Callable[[Connection], _Written]) -> Any:
            def work(conn: Connection) -> _Written:
                now = self.clock()
                row = one_statement.add(conn, self.table, now, key, line, owner, limits)
                # No row: the rule does not hold; the locking path (same transaction) says why.
                return locking(conn) if row is None else _Written(self._decode(row, now))

            return work

        first = None
        if op is None and one_statement.applies(self.engine, line, limits):
            first = in_one_statement
        change = ("add", line.product_id, line.quantity)

        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            return apply_add(state.lines, line, limits), {}

        started = time.monotonic()
        try:
            return self._change(key, owner, rule, op=op, change=change, first=first).state
        except sa.exc.DataError as exc:  # text PostgreSQL's JSON operators cannot read
            if first is None or not one_statement.unreadable(exc):
                raise
        # The locking path, within what is left of the call's deadline.
        left = self.timeout - (time.monotonic() - started)
        if left <= 0:
            raise unavailable(
                f"the SQL database did not answer within CART_STORE_TIMEOUT ({self.timeout:g} s)"
            )
        return self._change(key, owner, rule, op=op, change=change, timeout=left).state

    def set_quantity(
        self,
        key: CartKey,
        product_id: str,
        quantity: int,
        *,
        owner: Owner,
        limits: Limits,
        op: str | None = None,
    ) -> CartState:
        return self._change(
            key,
            owner,
            lambda s: (apply_set(s.lines, product_id, quantity, limits), {}),
            op=op,
            change=("set", product_id, quantity),
        ).state

    def remove(
        self, key: CartKey, product_id: str, *, owner: Owner, op: str | None = None
    ) -> tuple[bool, CartState]:
        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if product_id not in state.lines:
                raise _Unchanged(state)
            return {k: v for k, v in state.lines.items() if k != product_id}, {"removed": True}

        written = self._change(key, owner, rule, op=op, change=("remove", product_id))
        return written.repeat or bool(written.info.get("removed")), written.state

    def clear(self, key: CartKey, *, owner: Owner, op: str | None = None) -> CartState:
        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if not state.exists:
                raise _Unchanged(CartState())
            return {}, {}

        return self._change(key, owner, rule, op=op, change=("clear",)).state

    def delete(self, key: CartKey) -> bool:
        return self._run(
            lambda conn: bool(conn.execute(sa.delete(self.table).where(self._where(key))).rowcount)
        )

    def take(
        self, key: CartKey, *, expect: CartState | None = None, session: Any = None
    ) -> CartState:
        """Read and delete the cart (with `expect`: only while it is still that cart at that
        version, else answer it as it is); a sealed cart (a merge in progress) raises
        CartClosed and is left as it is, so its lines end up in one place only. With
        `session`, this runs in the session's transaction, under the session's settings."""
        t = self.table

        def work(conn: Connection) -> CartState:
            now = self.clock()
            row = conn.execute(sa.select(t).where(self._where(key)).with_for_update()).first()
            state = self._decode(row, now)
            if state.sealed:
                raise CartClosed("this cart is being merged into another; try again")
            if row is None or (
                expect is not None and (state.version, state.uid) != (expect.version, expect.uid)
            ):
                return state  # nothing removed
            deleted = conn.execute(
                sa.delete(t).where(t.c.id == row.id, t.c.version == row.version)
            ).rowcount
            return state if deleted else CartState()  # another checkout took it first

        if session is None:
            return self._run(work)
        with self._errors():
            return work(self._session_connection(session))

    def _session_connection(self, session: Any) -> Connection:
        """The connection of `session`'s transaction, which must be on this store's engine."""
        conn: Connection = session.connection()
        if conn.engine.url != self.engine.url:
            raise ValueError(
                "checkout(session=...) needs the cart store on that session's engine "
                "(CartManager(app, db=db) without CART_DATABASE_URI)"
            )
        return conn

    def seal(self, key: CartKey) -> CartState:
        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if state.sealed:
                raise _Unchanged(state)
            return state.lines, {"sealed": True}

        return self._change(key, None, rule, allow_sealed=True).state

    def merge(
        self,
        key: CartKey,
        source: Mapping[str, Line],
        *,
        strategy: str,
        marker: str,
        owner: Owner,
        limits: Limits,
        line_caps: Mapping[str, int] | None = None,
        carry: CartKey | None = None,
    ) -> MergeOutcome:
        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if marker in state.merged:
                raise _Unchanged(state)
            lines, moved, dropped = apply_merge(state.lines, source, strategy, limits, line_caps)
            return lines, {"marker": marker, "moved": moved, "dropped": dropped}

        written = self._change(key, owner, rule, carry=carry)
        if "marker" not in written.info:
            return MergeOutcome(written.state, already_merged=True)
        return MergeOutcome(written.state, written.info["moved"], written.info["dropped"])

    def rekey(
        self,
        source: CartKey,
        target: CartKey,
        *,
        owner: Owner,
        limits: Limits,
        tombstone: bool = False,
    ) -> CartState:
        """Re-key the row in place (its change-id records copied, a tombstone left at
        `source` when `tombstone`) when it is a live, unsealed cart and the target has no
        row; else as the base does (a sealed cart is merged once by its marker, an expired
        one is no cart)."""
        t = self.table

        def work(conn: Connection) -> CartState | None:
            now = self.clock()
            row = self._lock_row(conn, source, None, now)
            state = self._decode(row, now)
            if not state.exists or state.sealed:
                return None
            if conn.execute(sa.select(t.c.id).where(self._where(target))).first() is not None:
                return None
            conn.execute(
                sa.update(t)
                .where(t.c.id == row.id)
                .values(
                    identifier=target.identifier,
                    instance=target.instance,
                    customer_id=owner.customer_id,
                    is_guest=owner.customer_id is None,
                    version=t.c.version + 1,
                    updated_at=now,
                    expires_at=now + timedelta(seconds=owner.ttl),
                )
            )
            sql_keys.carry(conn, self.keys_table, source, target, now)
            if tombstone:
                conn.execute(sa.insert(t).values(self._tombstone(source, target, now)))
            return replace(
                state, version=state.version + 1, updated_at=now, customer_id=owner.customer_id
            )

        try:
            moved = self._run(work)
        except IntegrityError:  # the target row was made meanwhile
            moved = None
        if moved is not None:
            return moved
        return super().rekey(source, target, owner=owner, limits=limits, tombstone=tombstone)

    @staticmethod
    def _tombstone(key: CartKey, into: CartKey, now: datetime) -> dict[str, Any]:
        """The row of a tombstone at `key` for a cart merged into `into`: no cart (version
        0, no lines) that is sealed, for TOMBSTONE_SECONDS."""
        return {
            "identifier": key.identifier,
            "instance": key.instance,
            "content": _content({}, "", merged=[tombstone_marker(into)], sealed=True),
            "customer_id": None,
            "is_guest": True,
            "version": 0,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(seconds=TOMBSTONE_SECONDS),
        }

    def bury(self, key: CartKey, into: CartKey) -> None:
        def work(conn: Connection) -> None:
            now = self.clock()
            row = self._lock_row(conn, key, Owner(None, TOMBSTONE_SECONDS), now)
            dialects.update_row(conn, self.table, row.id, self._tombstone(key, into, now))

        self._run(work)

    def get_ttl(self, key: CartKey) -> int:
        def work(conn: Connection) -> int:
            expires = conn.execute(
                sa.select(self.table.c.expires_at).where(self._where(key))
            ).scalar_one_or_none()
            if expires is None:
                return 0
            return max(int((expires - self.clock()).total_seconds()), 0)

        return self._run(work)

    def set_ttl(self, key: CartKey, seconds: int) -> bool:
        t = self.table

        def work(conn: Connection) -> bool:
            now = self.clock()
            result = conn.execute(
                sa.update(t)
                .where(
                    self._where(key),
                    sa.or_(t.c.expires_at.is_(None), t.c.expires_at > now),
                )
                .values(expires_at=now + timedelta(seconds=seconds))
            )
            return bool(result.rowcount)

        return self._run(work)

    def cart_stats(
        self,
        *,
        now: datetime,
        guest_cutoff: datetime,
        customer_cutoff: datetime,
        sealed_cutoff: datetime | None = None,
    ) -> CartStats:
        """See CartStore.cart_stats; the work is in stores/sql_cleanup.py."""
        from . import sql_cleanup

        return sql_cleanup.cart_stats(
            self,
            now=now,
            guest_cutoff=guest_cutoff,
            customer_cutoff=customer_cutoff,
            sealed_cutoff=sealed_cutoff,
        )

    def delete_expired(
        self,
        *,
        guest_cutoff: datetime,
        customer_cutoff: datetime,
        batch_size: int,
        dry_run: bool = False,
        progress: Progress | None = None,
        sealed_cutoff: datetime | None = None,
        on_batch: Callable[[Sequence[Any]], None] | None = None,
    ) -> CleanupResult:
        """See CartStore.delete_expired; the work is in stores/sql_cleanup.py."""
        from . import sql_abandoned, sql_cleanup

        result = sql_cleanup.delete_expired(
            self,
            guest_cutoff=guest_cutoff,
            customer_cutoff=customer_cutoff,
            batch_size=batch_size,
            dry_run=dry_run,
            progress=progress,
            sealed_cutoff=sealed_cutoff,
            on_batch=on_batch,
        )
        if not dry_run:
            sql_abandoned.delete_stale_claims(self, batch_size=batch_size)
            sql_keys.sweep(self, self.clock())
        return result

    def claim_abandoned(
        self,
        *,
        stages: Sequence[Stage],
        now: datetime,
        limit: int | None,
        batch_size: int,
        dry_run: bool = False,
        on_batch: BatchHook | None = None,
    ) -> Iterator[list[AbandonedCart]]:
        """See CartStore.claim_abandoned; the work is in stores/sql_abandoned.py."""
        from . import sql_abandoned

        return sql_abandoned.claim_abandoned(
            self,
            stages=stages,
            now=now,
            limit=limit,
            batch_size=batch_size,
            dry_run=dry_run,
            on_batch=on_batch,
        )

    def load_many(self, keys: Sequence[CartKey]) -> list[CartState]:
        """See CartStore.load_many; one SELECT (stores/sql_abandoned.py)."""
        from . import sql_abandoned

        return sql_abandoned.load_many(self, keys)

    def release_abandoned(self, reports: Sequence[AbandonedCart]) -> None:
        """See CartStore.release_abandoned (stores/sql_abandoned.py)."""
        from . import sql_abandoned

        sql_abandoned.release(self, reports)

    def set_email(self, key: CartKey, email: str | None) -> bool:
        """See CartStore.set_email; a table of its own (stores/sql_abandoned.py)."""
        from . import sql_abandoned

        return sql_abandoned.set_email(self, key, email)

    def unsubscribe(self, key: CartKey, uid: str) -> bool:
        """See CartStore.unsubscribe (stores/sql_abandoned.py)."""
        from . import sql_abandoned

        return sql_abandoned.unsubscribe(self, key, uid)

    def reread_abandoned(self, keys: Sequence[CartKey]) -> list[tuple[CartState, Contact]]:
        """See CartStore.reread_abandoned: one round trip."""
        from . import sql_abandoned

        return sql_abandoned.reread(self, keys)

    def contacts(self, keys: Sequence[CartKey], uids: Sequence[str]) -> list[Contact]:
        """See CartStore.contacts (stores/sql_abandoned.py)."""
        from . import sql_abandoned

        return sql_abandoned.contacts(self, keys, uids)
