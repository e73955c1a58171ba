"""PostgreSQL: the bounds of every store transaction and the one-statement add, sent on
the driver's connection directly, in the store call's transaction.

``Connection.execute()`` costs the client about as much again as the driver's own work
(compiled-cache lookup, execution context, result object, type processors). These two
statements need none of it: their SQL is fixed, their parameters are plain values the
driver adapts itself, and their one row is read here. Everything else about the call stays
as it is: the transaction SQLAlchemy began (and commits after the answer), the watchdog, and
the errors: a driver error comes out as SQLAlchemy's ``DBAPIError`` of the same kind. A lost
connection is then found by the transaction's rollback, which SQLAlchemy runs: it discards
the connection (and, but when the watchdog cut it, the pool's others), as after
``execute()``.

Only psycopg (3), whose ``pyformat`` parameters and adaptation of ``str``, ``int``,
``bool``, ``None`` and aware datetimes are what the statements need; and only without
statement logging (``echo``) or any listener of an event that sees statements or their
errors (``before_execute``, ``before_cursor_execute``, ``do_execute``, ``handle_error``...)
but flask-cart's own, so that logging, tracing and counting tools see every statement.
Another driver, or such an engine, takes ``execute()`` as before. Errors hide their
parameters when the engine does (``hide_parameters``); an interruption (a timeout raised
into the call, a cancellation) discards the connection and reaches the caller as itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: Exceptions (besides BaseExceptions such as gevent.Timeout) after which SQLAlchemy
#: discards the connection, as here: the statement may still be running on it.
EXIT_EXCEPTIONS = (asyncio.TimeoutError, asyncio.CancelledError)
#: Drivers whose connection is called directly.
DRIVERS = frozenset({"psycopg"})


#: Events in which a listener sees or wraps a statement (on the connection, the dialect).
STATEMENT_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)
DIALECT_EVENTS = ("do_execute", "do_execute_no_params", "do_setinputsizes", "handle_error")
#: flask-cart's own listeners (sql_dialects), which do not need the statements.
OWN_LISTENERS: set[Any] = set()


def direct(conn: Connection) -> bool:
    """Whether statements on `conn` may go to the driver directly: psycopg, no statement
    logging (``echo``, the ``sqlalchemy.engine`` logger at INFO) and no listener of a
    statement event other than flask-cart's own."""
    dialect = conn.dialect
    if dialect.name != "postgresql" or dialect.driver not in DRIVERS:
        return False
    if dialect.paramstyle != "pyformat":  # the statements pass their parameters by name
        return False
    if getattr(conn, "_echo", True):
        return False
    events, dialect_events = conn.dispatch, conn.dialect.dispatch
    return not any(getattr(events, name) for name in STATEMENT_EVENTS) and all(
        fn in OWN_LISTENERS for name in DIALECT_EVENTS for fn in getattr(dialect_events, name)
    )


def execute(conn: Connection, statement: str, params: dict[str, Any] | None = None) -> Any:
    """Run `statement` (``%(name)s`` parameters) on `conn`'s driver connection: its first
    row as a tuple, or None when it returns no row."""
    dbapi = conn.dialect.loaded_dbapi
    driver = conn.connection.dbapi_connection
    assert driver is not None  # the call's connection is checked out and valid
    cursor = driver.cursor()
    try:
        if params is None:
            cursor.execute(statement)
        else:
            cursor.execute(statement, params)
        return cursor.fetchone() if cursor.description is not None else None
    except dbapi.Error as exc:
        hide = conn.engine.hide_parameters
        raise sa.exc.DBAPIError.instance(
            statement, params, exc, dbapi.Error, hide_parameters=hide, dialect=conn.dialect
        ) from exc
    except BaseException as exc:
        if not isinstance(exc, Exception) or isinstance(exc, EXIT_EXCEPTIONS):
            conn.invalidate(exc)  # interrupted mid-statement: the connection is not reusable
        raise
    finally:
        with contextlib.suppress(dbapi.Error):  # a lost connection: the error above says so
            cursor.close()


__all__ = ["DRIVERS", "OWN_LISTENERS", "direct", "execute"]
