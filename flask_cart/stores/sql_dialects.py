"""What differs between SQL databases: column types, the row-lock statement, timeouts, and
which errors are safe to retry.

- Keys compare byte for byte everywhere: MySQL and MariaDB string collations fold case and
  accents, and ``utf8mb4_bin`` still pads trailing spaces ('jose' = 'jose '), so there the
  key columns are VARBINARY holding UTF-8.
- Timestamps are UTC whatever the session's time zone: MySQL/MariaDB and SQLite keep naive
  UTC (DATETIME(6), not TIMESTAMP, which the session's time_zone shifts); PostgreSQL keeps
  timestamptz and every value read is converted to UTC.
- Locking a cart's row, creating it when missing, is one upsert: ``INSERT ... ON CONFLICT
  DO UPDATE ... RETURNING`` (PostgreSQL, SQLite), ``INSERT ... ON DUPLICATE KEY UPDATE
  ... RETURNING`` (MariaDB 10.5+), ``INSERT ... ON DUPLICATE KEY UPDATE`` then ``SELECT ...
  FOR UPDATE`` (MySQL). On MySQL and MariaDB the upsert takes the row's exclusive lock, so
  two writers never hold a shared lock each and deadlock upgrading it.
- Server-side bounds inside each store transaction, on any engine (the app's own too):
  PostgreSQL ``statement_timeout`` and ``lock_timeout`` (``SET LOCAL``, ended with the
  transaction); MariaDB ``SET STATEMENT max_statement_time, innodb_lock_wait_timeout FOR``
  on each store statement (the session is never changed).
"""

from __future__ import annotations

import math
import threading
import weakref
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
import sqlalchemy.dialects.mysql
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError

from . import sql_driver

MYSQL = frozenset({"mysql", "mariadb"})

#: MySQL/MariaDB errors after which InnoDB rolled the whole transaction back: a retry is safe.
#: 1213 deadlock; 1020 "record has changed since last read" (snapshot isolation).
MYSQL_RETRY = frozenset({1213, 1020})
#: PostgreSQL SQLSTATEs of the same kind: deadlock_detected, serialization_failure.
POSTGRES_RETRY = frozenset({"40P01", "40001"})

#: Execution option naming the bound (seconds) of the statements of one store call.
LIMIT_OPTION = "flask_cart_limit"


class KeyString(sa.TypeDecorator[str]):
    """A string key compared byte for byte on every database (VARBINARY on MySQL/MariaDB)."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in MYSQL:
            # 4 bytes per character at most in UTF-8.
            return dialect.type_descriptor(sa.dialects.mysql.VARBINARY(self.length * 4))
        return dialect.type_descriptor(sa.String(self.length))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and dialect.name in MYSQL:
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8")
        return value  # type: ignore[no-any-return]


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend and session time zone."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in MYSQL:
            return dialect.type_descriptor(sa.dialects.mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


def as_utc(value: datetime | None) -> datetime | None:
    """A timestamp read from the database, in UTC: a naive one (MySQL/MariaDB and SQLite
    keep naive UTC; a column migrated to ``timestamp`` without time zone) is UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _statements(table: sa.Table, dialect: str) -> dict[str, Any]:
    """The change path's statements on `table`, built once per dialect: executed with their
    values as parameters, each hits SQLAlchemy's compiled cache without being rebuilt."""
    cache: dict[str, dict[str, Any]] = table.info.setdefault("flask_cart.statements", {})
    built = cache.get(dialect)
    if built is not None:
        return built
    c = table.c
    by_key = sa.and_(
        c.identifier == sa.bindparam("key_identifier"), c.instance == sa.bindparam("key_instance")
    )
    built = {
        "update": sa.update(table).where(c.id == sa.bindparam("row_id")),
        "read": sa.select(table).where(by_key),
        "lock": sa.select(table).where(by_key).with_for_update(),
        # SQLite's write lock before a read (a no-op UPDATE): see SQLStore._lock_row.
        "touch": sa.update(table).where(by_key).values(version=c.version),
    }
    if dialect in ("postgresql", "sqlite"):
        module = sa.dialects.postgresql if dialect == "postgresql" else sa.dialects.sqlite
        built["upsert"] = (
            module.insert(table)
            .on_conflict_do_update(
                index_elements=[c.identifier, c.instance], set_={"version": c.version}
            )
            .returning(*c)
        )
    elif dialect in MYSQL:
        built["upsert"] = sa.dialects.mysql.insert(table).on_duplicate_key_update(version=c.version)
        # MariaDB 10.5+: the row back from the same statement, locked as the upsert left it.
        built["upsert_returning"] = built["upsert"].returning(*c)
    else:
        built["upsert"] = sa.insert(table)
    cache[dialect] = built
    return built


def by_key(conn: Connection, table: sa.Table, name: str, key: Any) -> Any:
    """Run the statement `name` ("read", "lock" or "touch") on the row of CartKey `key`."""
    params = {"key_identifier": key.identifier, "key_instance": key.instance}
    return conn.execute(_statements(table, conn.dialect.name)[name], params)


def update_row(conn: Connection, table: sa.Table, row_id: Any, values: dict[str, Any]) -> None:
    """``UPDATE table SET <values> WHERE id = row_id``."""
    conn.execute(_statements(table, conn.dialect.name)["update"], {**values, "row_id": row_id})


def upsert_and_lock(conn: Connection, table: sa.Table, values: dict[str, Any]) -> Any:
    """Insert the row when missing, lock it, return it (None: it vanished; try again)."""
    dialect = conn.dialect.name
    statements = _statements(table, dialect)
    if dialect in ("postgresql", "sqlite"):
        return conn.execute(statements["upsert"], values).one()
    if dialect in MYSQL:
        if returns_upserted_rows(conn.dialect):
            return conn.execute(statements["upsert_returning"], values).one()
        conn.execute(statements["upsert"], values)
    else:
        # Elsewhere: insert in a savepoint; a duplicate key means the row is there.
        try:
            with conn.begin_nested():
                conn.execute(statements["upsert"], values)
        except sa.exc.IntegrityError:
            pass
    # A row deleted between the two statements reads as None: the caller retries.
    params = {"key_identifier": values["identifier"], "key_instance": values["instance"]}
    return conn.execute(statements["lock"], params).one_or_none()


def returns_upserted_rows(dialect: Dialect) -> bool:
    """MariaDB 10.5 and later answer ``INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING``
    with the row (MySQL has no RETURNING)."""
    return bool(getattr(dialect, "is_mariadb", False) and dialect.insert_returning)


def own_engine_options(url: sa.URL, timeout: float) -> dict[str, Any]:
    """create_engine() options bounding connect, every server answer and pool checkout."""
    backend = url.get_backend_name()
    driver = url.get_driver_name()
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {"connect_args": connect_args}
    if backend == "sqlite":
        connect_args["timeout"] = timeout  # waiting for another writer's lock
        if url.database in (None, "", ":memory:"):
            return options  # a single-connection pool: no checkout wait
    elif backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        # libpq's connect_timeout is whole seconds (and at least 2).
        connect_args["connect_timeout"] = max(1, math.ceil(timeout))
    elif backend in MYSQL and driver == "pymysql":
        # Client-side socket deadlines: they hold against a frozen server too.
        connect_args.update(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    if backend in MYSQL:
        # Every use ends its transaction through SQLAlchemy's Connection (commit, rollback,
        # or the rollback of close()): the pool's own ROLLBACK on return would be a wasted
        # round trip (PyMySQL sends it even when no transaction is open).
        options["pool_reset_on_return"] = None
    options["pool_timeout"] = timeout
    return options


#: Key in a connection's ``info`` of the watchdog alarm of the store call running on it.
ALARM_KEY = "flask_cart_alarm"

_prepared: weakref.WeakSet[Engine] = weakref.WeakSet()
_prepared_lock = threading.Lock()


def _set_statement(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    """MariaDB: prefix a store statement with its time and lock-wait bounds."""
    limit = context.execution_options.get(LIMIT_OPTION) if context is not None else None
    if limit is None or executemany:
        return statement, parameters
    lock_wait = max(1, math.ceil(limit))  # whole seconds
    prefix = f"SET STATEMENT max_statement_time={limit:.3f}, innodb_lock_wait_timeout={lock_wait}"
    return f"{prefix} FOR {statement}", parameters


def _timed_out(ctx: Any) -> None:
    """A store call whose deadline passed lost its connection, not the server: invalidate
    that connection only (the pool's others stay, so the next call needs no new connect)."""
    conn = ctx.connection
    alarm = conn.info.get(ALARM_KEY) if conn is not None and not conn.closed else None
    if alarm is not None and alarm.fired:
        ctx.is_disconnect = True
        ctx.invalidate_pool_on_disconnect = False


def prepare_engine(engine: Engine) -> None:
    """Add flask-cart's event hooks to `engine` once (they act on store calls only)."""
    if engine in _prepared:
        return
    with _prepared_lock:
        if engine in _prepared:
            return
        sa.event.listen(engine, "handle_error", _timed_out)
        if engine.dialect.name in MYSQL:
            sa.event.listen(engine, "before_cursor_execute", _set_statement, retval=True)
        _prepared.add(engine)


sql_driver.OWN_LISTENERS.update({_timed_out, _set_statement})


#: PostgreSQL: both timeouts for the current transaction only (``SET LOCAL``), in ms.
_SET_TIMEOUTS = (
    "SELECT set_config('statement_timeout', '{ms}', true), set_config('lock_timeout', '{ms}', true)"
)


def bound_transaction(conn: Connection, seconds: float) -> None:
    """Bound the statements and lock waits of the transaction just begun on `conn`."""
    dialect = conn.dialect
    if dialect.name == "postgresql":
        statement = _SET_TIMEOUTS.format(ms=max(1, int(seconds * 1000)))
        if sql_driver.direct(conn):
            sql_driver.execute(conn, statement)
        else:
            conn.exec_driver_sql(statement)
    elif dialect.name in MYSQL and getattr(dialect, "is_mariadb", False):
        conn.execution_options(**{LIMIT_OPTION: seconds})


def is_retryable(exc: DBAPIError) -> bool:
    """True when the database rolled the transaction back (deadlock): run it again."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in POSTGRES_RETRY:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and isinstance(args[0], int) and args[0] in MYSQL_RETRY
