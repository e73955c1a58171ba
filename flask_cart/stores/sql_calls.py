"""One SQL store call: a transaction whose every wait ends by the store's deadline.

- the pool checkout waits at most the engine's ``pool_timeout``; an exhausted pool
  (``sqlalchemy.exc.TimeoutError``) is StoreUnavailable, as is a failed connect;
- the transaction's statements and lock waits are bounded on the server
  (``sql_dialects.bound_transaction``) and by the client-side watchdog
  (``sql_watchdog``), which shuts the connection's socket at the deadline: that connection
  alone is discarded and the call answers StoreUnavailable;
- a transaction the database rolled back (a deadlock) or that lost its row between two
  statements (``Retry``) is run again, at most ATTEMPTS times and within the same deadline.
  Nothing else is retried: a timeout may have hit a change that the server applies later.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from . import sql_dialects as dialects
from .failures import sql_cannot_answer, unavailable
from .sql_watchdog import WATCHDOG

#: Runs of one call's transaction when the database rolls it back (deadlock, lock race).
ATTEMPTS = 6

T = TypeVar("T")


class Retry(Exception):
    """The transaction must run again (the row vanished under the lock path)."""


@contextmanager
def errors(engine: Engine | Callable[[], Engine] | None = None) -> Iterator[None]:
    """Turn connection failures, timeouts and the database's "cannot answer now" (read-only
    after a fail-over, a shutdown; see failures.sql_cannot_answer) into StoreUnavailable,
    their detail logged with the database's URL (no password); others pass through."""
    try:
        yield
    except sa.exc.TimeoutError as exc:  # no pooled connection came free in time
        raise unavailable(
            f"no pooled connection to {where(engine)} came free in time", exc
        ) from exc
    except DBAPIError as exc:
        if (
            isinstance(exc, sa.exc.OperationalError)
            or exc.connection_invalidated
            or sql_cannot_answer(exc.orig)
        ):
            raise unavailable(f"the SQL database {where(engine)} did not answer", exc.orig) from exc
        raise


def where(engine: Engine | Callable[[], Engine] | None) -> str:
    """The database's URL without its password, for the operator's log ("?" when unknown)."""
    try:
        resolved = engine() if callable(engine) else engine
        if resolved is None:
            return "?"
        return resolved.url.render_as_string(hide_password=True)
    except Exception:  # a log line never fails the request (no app context, say)
        return "?"


@contextmanager
def transaction(engine: Engine, deadline: float, timeout: float) -> Iterator[Connection]:
    """One transaction on `engine` whose every wait ends by `deadline` (time.monotonic())."""
    dialects.prepare_engine(engine)
    late = f"the SQL database did not answer within CART_STORE_TIMEOUT ({timeout:g} s)"
    with engine.connect() as conn:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise unavailable(late)
        alarm = WATCHDOG.arm(conn.connection.dbapi_connection, deadline)
        info = conn.info  # the pooled connection's: kept after an invalidation
        info[dialects.ALARM_KEY] = alarm
        try:
            with conn.begin():
                dialects.bound_transaction(conn, remaining)
                yield conn
        except DBAPIError as exc:
            if alarm.fired:
                raise unavailable(late, exc.orig) from exc
            raise
        finally:
            alarm.cancel()
            info.pop(dialects.ALARM_KEY, None)
            if alarm.fired and not conn.invalidated:
                conn.invalidate()  # its socket is shut: never back to the pool


def run(engine: Engine, timeout: float, work: Callable[[Connection], T]) -> T:
    """`work` in one bounded transaction, run again when the database rolled it back."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with errors(engine):
                try:
                    with transaction(engine, deadline, timeout) as conn:
                        return work(conn)
                except DBAPIError as exc:
                    if not dialects.is_retryable(exc):
                        raise
                    last = exc
        except Retry as exc:
            last = exc
        pause = random.uniform(0, 0.004 * attempt)
        if attempt == ATTEMPTS or time.monotonic() + pause >= deadline:
            break
        time.sleep(pause)
    raise unavailable(
        f"the SQL transaction was rolled back {ATTEMPTS} times (deadlocks)", last
    ) from last
