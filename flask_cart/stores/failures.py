"""A store that cannot answer now: which driver errors say so, and what the shopper reads.

Every `StoreUnavailable` a store raises carries `PUBLIC_MESSAGE`, which names nothing of
the server; what the driver said (host, port, user, SQL) or which deadline fired goes to
the ``flask_cart`` logger at WARNING, once per failure.

"Cannot answer now" is decided by the error's class or code, never by its wording alone:

- redis-py: connection errors and timeouts, cluster errors (``CLUSTERDOWN``, ``TRYAGAIN``,
  ``MASTERDOWN``, an uncovered slot, an unreachable cluster), and replies whose error
  prefix is one of `REDIS_BUSY_PREFIXES` (``READONLY``, ``NOREPLICAS``, ``LOADING``, ...),
  also when a Lua script passes them on;
- SQL drivers: a SQLSTATE in `SQLSTATE_CLASSES` or `SQLSTATES` (PostgreSQL: a read-only
  transaction on a standby, an admin shutdown, too many connections), a MySQL/MariaDB error
  number in `MYSQL_ERRORS` (``--read-only``, a read-only transaction, a shutdown), and a
  SQLite result code in `SQLITE_CODES`.
"""

from __future__ import annotations

import functools
import logging
import re

from ..errors import StoreUnavailable

log = logging.getLogger("flask_cart")

#: What a shopper reads whenever the store cannot answer.
PUBLIC_MESSAGE = "Your cart is unavailable right now. Please try again in a moment."

#: Error prefixes of a Redis reply that mean "not now": a failover, a replica, a restart.
REDIS_BUSY_PREFIXES = frozenset(
    {
        "CLUSTERDOWN",
        "TRYAGAIN",
        "MASTERDOWN",
        "READONLY",
        "NOREPLICAS",
        "LOADING",
        "BUSY",
        "MISCONF",
        "OOM",
    }
)
#: The prefix of a reply, or of the error a script's redis.call passed on (``... -PREFIX``).
_PREFIX = re.compile(r"(?:^|: -)([A-Z]+) ")

#: SQLSTATE classes that mean "not now": 08 connection exception, 53 insufficient
#: resources (too many connections), 57 operator intervention (admin or crash shutdown,
#: cannot connect now, a statement cancelled by its timeout), 58 system error.
SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
#: Single SQLSTATEs: 25006 read-only transaction (a hot standby after a fail-over, a
#: database set read-only), 55P03 lock not available (lock_timeout).
SQLSTATES = frozenset({"25006", "55P03"})
#: MySQL/MariaDB error numbers that mean "not now".
MYSQL_ERRORS = frozenset(
    {
        1040,  # too many connections
        1047,  # Galera: the node is not ready
        1053,  # server shutdown in progress
        1203,  # max_user_connections reached
        1205,  # lock wait timeout
        1290,  # --read-only (or another server option) prevents the statement
        1317,  # query interrupted
        1792,  # read-only transaction
        1836,  # read-only mode
        1927,  # connection killed (MariaDB)
        1969,  # max_statement_time exceeded (MariaDB)
        2002,  # client: cannot connect (socket)
        2003,  # client: cannot connect (TCP)
        2006,  # client: server has gone away
        2013,  # client: lost connection during a query
        2055,  # client: lost connection at a system error
        3024,  # max_execution_time exceeded (MySQL)
        4031,  # disconnected for inactivity
    }
)
#: SQLite primary result codes: busy, locked, read-only, I/O error, full, cannot open.
SQLITE_CODES = frozenset({5, 6, 8, 10, 13, 14})


def unavailable(detail: str, cause: BaseException | None = None) -> StoreUnavailable:
    """Log why the store did not answer (WARNING, with the driver's text) and return the
    StoreUnavailable to raise, whose message names nothing of the server."""
    if cause is not None:
        kind = f"{type(cause).__module__}.{type(cause).__qualname__}"
        log.warning("flask-cart: the cart store is unavailable: %s (%s: %s)", detail, kind, cause)
    else:
        log.warning("flask-cart: the cart store is unavailable: %s", detail)
    return StoreUnavailable(PUBLIC_MESSAGE)


@functools.cache
def _redis_classes() -> tuple[type[BaseException], ...]:
    """redis-py's exception classes that mean "cannot answer now" (those this version has)."""
    import redis.exceptions as rex

    names = (
        "ConnectionError",  # BusyLoadingError (LOADING) and MaxConnectionsError among them
        "TimeoutError",
        "ClusterError",  # ClusterDownError, MasterDownError, "TTL exhausted"
        "TryAgainError",
        "ReadOnlyError",
        "OutOfMemoryError",
        "SlotNotCoveredError",
        "RedisClusterUnreachableError",
    )
    found: tuple[type[BaseException], ...] = (OSError,)
    for name in names:
        cls = getattr(rex, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found += (cls,)
    return found


#: A cluster client that finds no node or an uncovered slot while it re-reads the cluster's
#: layout raises a bare RedisClusterException (no class of its own before redis-py 8).
_CLUSTER_LAYOUT = ("Redis Cluster cannot be connected", "All slots are not covered")


def redis_cannot_answer(exc: BaseException) -> bool:
    """True for a redis-py error that means the server cannot answer now."""
    import redis.exceptions as rex

    if isinstance(exc, _redis_classes()):
        return True
    if isinstance(exc, rex.ResponseError):
        return any(m.group(1) in REDIS_BUSY_PREFIXES for m in _PREFIX.finditer(str(exc) + " "))
    if type(exc) is rex.RedisClusterException:
        return str(exc).startswith(_CLUSTER_LAYOUT)
    return False


def _sqlstate(orig: object) -> str | None:
    value = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return value if isinstance(value, str) else None


def sql_cannot_answer(orig: object) -> bool:
    """True for a DBAPI error (`exc.orig`) whose code means the database cannot answer now."""
    state = _sqlstate(orig)
    if state is not None and (state in SQLSTATES or state[:2] in SQLSTATE_CLASSES):
        return True
    args = getattr(orig, "args", ())
    if args and type(args[0]) is int and args[0] in MYSQL_ERRORS:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    return type(code) is int and code & 0xFF in SQLITE_CODES
