"""SQL store (SQLAlchemy 2): one row per cart, changed under a row lock in one transaction.

Each change upserts the row and locks it in one statement (``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING`` on PostgreSQL and SQLite; ``SELECT ... FOR UPDATE`` elsewhere),
applies the shared line rules, and writes the result with a new version.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..cleanup import CartStats, CleanupResult
from ..errors import CartClosed, StoreUnavailable
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
from .base import MAX_REMEMBERED_OPS, CartKey, CartStore

DEFAULT_TABLE = "flask_cart"
DEFAULT_TIMEOUT = 2.0


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def cart_table(metadata: sa.MetaData, name: str = DEFAULT_TABLE) -> sa.Table:
    """The carts table on `metadata` (reused when already defined there)."""
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(
        name,
        metadata,
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        ),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("instance", sa.String(64), nullable=False),
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

    def __init__(self, state: CartState) -> None:
        self.state = state


def _content(
    lines: Mapping[str, Line], state: CartState, **changes: Any
) -> dict[str, Any]:
    content = {
        "lines": lines_to_json(lines),
        "merged": sorted(state.merged),
        "sealed": False,
        "uid": state.uid,
    }
    content.update(changes)
    return content


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
        self.table = (
            table if table is not None else cart_table(sa.MetaData(), table_name)
        )
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    @staticmethod
    def create_engine(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Engine:
        """An engine of flask-cart's own for `url`, its waits bounded by `timeout`."""
        return sa.create_engine(url)

    @property
    def engine(self) -> Engine:
        return self._engine()

    def create_all(self) -> None:
        """Create the table and its indexes where missing."""
        with self._errors():
            self.table.create(self.engine, checkfirst=True)

    @staticmethod
    @contextmanager
    def _errors() -> Iterator[None]:
        """Turn connection failures into StoreUnavailable; other errors pass through."""
        try:
            yield
        except sa.exc.OperationalError as exc:
            raise StoreUnavailable(f"the SQL cart store is unavailable: {exc.orig}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable(f"the SQL cart store is unavailable: {exc.orig}") from exc
            raise

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

    def _lock_row(
        self, conn: Connection, key: CartKey, owner: Owner, now: datetime
    ) -> Any:
        """Create the row if missing and lock it, returning it."""
        t = self.table
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
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            module = (
                sa.dialects.postgresql
                if dialect == "postgresql"
                else sa.dialects.sqlite
            )
            stmt = module.insert(t).values(values)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.identifier, t.c.instance],
                set_={"version": t.c.version},
            )
            return conn.execute(stmt.returning(*t.c)).one()
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(t).values(values))
        except IntegrityError:
            pass
        return conn.execute(
            sa.select(t).where(self._where(key)).with_for_update()
        ).one()

    def _change(
        self,
        key: CartKey,
        owner: Owner,
        rule: Callable[[CartState], tuple[Mapping[str, Line], dict[str, Any]]],
        *,
        allow_sealed: bool = False,
        op: str | None = None,
        on_repeat: Callable[[], None] | None = None,
    ) -> CartState:
        """Lock the cart, apply `rule` to it, write the result as the next version.

        `op` (the change's id) is remembered with the cart (the last MAX_REMEMBERED_OPS);
        a change whose id is remembered is not applied again: it answers the cart as it is
        now (after calling `on_repeat`)."""
        now = self.clock()
        try:
            with self._errors(), self.engine.begin() as conn:
                row = self._lock_row(conn, key, owner, now)
                state = self._decode(row, now)
                if state.sealed and not allow_sealed:
                    raise CartClosed(
                        "this cart was merged into another and takes no more changes"
                    )
                ops = [str(o) for o in (row.content or {}).get("ops", ())] if state.exists else []
                if op is not None and op in ops:
                    if on_repeat is not None:
                        on_repeat()
                    raise _Unchanged(state)
                if op is not None:
                    ops = [op, *ops][:MAX_REMEMBERED_OPS]
                fresh = not state.uid
                if fresh:
                    state = replace(state, uid=uuid.uuid4().hex)
                lines, changes = rule(state)
                content = _content(lines, state, **changes)
                if ops:
                    content["ops"] = ops
                values = {
                    "content": content,
                    "version": row.version + 1,
                    "updated_at": now,
                    "customer_id": owner.customer_id,
                    "is_guest": owner.customer_id is None,
                    "expires_at": now + timedelta(seconds=owner.ttl),
                }
                if fresh:
                    values["created_at"] = now
                conn.execute(
                    sa.update(self.table)
                    .where(self.table.c.id == row.id)
                    .values(values)
                )
        except _Unchanged as unchanged:
            return unchanged.state
        return CartState(
            lines=dict(lines),
            version=row.version + 1,
            created_at=now if fresh else row.created_at,
            updated_at=now,
            customer_id=owner.customer_id,
            sealed=bool(changes.get("sealed", False)),
            merged=frozenset(changes.get("merged", state.merged)),
            uid=state.uid,
        )

    def load(self, key: CartKey) -> CartState:
        with self._errors(), self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.table).where(self._where(key))
            ).one_or_none()
        return self._decode(row, self.clock())

    def add(
        self, key: CartKey, line: Line, *, owner: Owner, limits: Limits, op: str | None = None
    ) -> CartState:
        return self._change(
            key, owner, lambda s: (apply_add(s.lines, line, limits), {}), op=op
        )

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
        )

    def remove(
        self, key: CartKey, product_id: str, *, owner: Owner, op: str | None = None
    ) -> tuple[bool, CartState]:
        removed: list[bool] = []

        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if product_id not in state.lines:
                raise _Unchanged(state)
            removed.append(True)
            return {k: v for k, v in state.lines.items() if k != product_id}, {}

        # A repeated change answers (True, the cart now): it was applied once.
        state = self._change(key, owner, rule, op=op, on_repeat=lambda: removed.append(True))
        return bool(removed), state

    def clear(self, key: CartKey, *, owner: Owner, op: str | None = None) -> CartState:
        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if not state.exists:
                raise _Unchanged(CartState())
            return {}, {}

        return self._change(key, owner, rule, op=op)

    def delete(self, key: CartKey) -> bool:
        with self._errors(), self.engine.begin() as conn:
            return bool(
                conn.execute(sa.delete(self.table).where(self._where(key))).rowcount
            )

    def take(
        self, key: CartKey, *, version: int | None = None, session: Any = None
    ) -> CartState:
        now = self.clock()
        if session is None:
            with self._errors(), self.engine.begin() as conn:
                return self._take(conn, key, version, now)
        with self._errors():
            return self._take(self._session_connection(session), key, version, now)

    def _session_connection(self, session: Any) -> Connection:
        """The connection of `session`'s transaction, which must be on this store's engine."""
        conn: Connection = session.connection()
        if conn.engine.url != self.engine.url:
            raise ValueError(
                "checkout(session=...) needs the cart store on that session's engine "
                "(CartManager(app, db=db) without CART_DATABASE_URI)"
            )
        return conn

    def _take(
        self, conn: Connection, key: CartKey, version: int | None, now: datetime
    ) -> CartState:
        t = self.table
        where = [self._where(key)]
        if version is not None:
            where.append(t.c.version == version)
        if conn.dialect.delete_returning:
            row = conn.execute(sa.delete(t).where(*where).returning(*t.c)).first()
        else:
            row = conn.execute(sa.select(t).where(*where).with_for_update()).one_or_none()
            if row is not None:
                conn.execute(sa.delete(t).where(t.c.id == row.id))
        if row is None and version is not None:
            row = conn.execute(sa.select(t).where(self._where(key))).one_or_none()
        return self._decode(row, now)

    def seal(self, key: CartKey) -> CartState:
        current = self.load(key)
        if not current.exists or current.sealed:
            return current
        owner = Owner(current.customer_id, max(self.get_ttl(key), 1))

        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if state.sealed:
                raise _Unchanged(state)
            return state.lines, {"sealed": True}

        return self._change(key, owner, rule, allow_sealed=True)

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
    ) -> MergeOutcome:
        result: dict[str, Any] = {}

        def rule(state: CartState) -> tuple[Mapping[str, Line], dict[str, Any]]:
            if marker in state.merged:
                raise _Unchanged(state)
            lines, moved, dropped = apply_merge(
                state.lines, source, strategy, limits, line_caps
            )
            result.update(moved=moved, dropped=dropped)
            return lines, {"merged": sorted(state.merged | {marker})}

        state = self._change(key, owner, rule)
        if not result:
            return MergeOutcome(state, already_merged=True)
        return MergeOutcome(state, result["moved"], result["dropped"])

    def rekey(
        self, source: CartKey, target: CartKey, *, owner: Owner, limits: Limits
    ) -> CartState:
        """Re-key the row in place when the target has no cart; else merge as the base does."""
        now = self.clock()
        t = self.table
        with self._errors(), self.engine.begin() as conn:
            taken = conn.execute(sa.select(t.c.id).where(self._where(target))).first()
            if taken is None:
                moved = conn.execute(
                    sa.update(t)
                    .where(self._where(source))
                    .values(
                        identifier=target.identifier,
                        instance=target.instance,
                        customer_id=owner.customer_id,
                        is_guest=owner.customer_id is None,
                        version=t.c.version + 1,
                        updated_at=now,
                        expires_at=now + timedelta(seconds=owner.ttl),
                    )
                ).rowcount
                if moved:
                    return self._decode_key(conn, target, now)
        return super().rekey(source, target, owner=owner, limits=limits)

    def _decode_key(self, conn: Connection, key: CartKey, now: datetime) -> CartState:
        row = conn.execute(sa.select(self.table).where(self._where(key))).one()
        return self._decode(row, now)

    def get_ttl(self, key: CartKey) -> int:
        now = self.clock()
        with self._errors(), self.engine.connect() as conn:
            expires = conn.execute(
                sa.select(self.table.c.expires_at).where(self._where(key))
            ).scalar_one_or_none()
        if expires is None:
            return 0
        return max(int((expires - now).total_seconds()), 0)

    def set_ttl(self, key: CartKey, seconds: int) -> bool:
        now = self.clock()
        t = self.table
        with self._errors(), self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(
                    self._where(key),
                    sa.or_(t.c.expires_at.is_(None), t.c.expires_at > now),
                )
                .values(expires_at=now + timedelta(seconds=seconds))
            )
        return bool(result.rowcount)

    def cart_stats(self, **cutoffs: Any) -> CartStats:
        """See CartStore.cart_stats; the work is in stores/sql_cleanup.py."""
        from . import sql_cleanup

        return sql_cleanup.cart_stats(self, **cutoffs)

    def delete_expired(self, **options: Any) -> CleanupResult:
        """See CartStore.delete_expired; the work is in stores/sql_cleanup.py."""
        from . import sql_cleanup

        return sql_cleanup.delete_expired(self, **options)
