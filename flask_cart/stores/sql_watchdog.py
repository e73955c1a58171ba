"""A client-side deadline for SQL store calls: it holds even when the server is frozen.

A frozen server (SIGSTOP, a stalled VM) is not a dead one: its kernel still accepts
connections and keeps them open, so no connect error comes and server-side timeouts never
fire. When a call passes its deadline, one shared watchdog thread shuts down the socket of
the DBAPI connection it runs on: the blocked driver call returns at once with an error, the
store invalidates that connection (it never goes back to the pool) and answers
StoreUnavailable.

Drivers: psycopg 3 (``pgconn.socket``), PyMySQL (``_sock``), sqlite3 (``interrupt()``, which
stops a running statement). Another driver is left alone: its own timeouts apply.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any


def interrupt(dbapi_conn: Any) -> None:
    """Make a blocked call on `dbapi_conn` return now (its connection is not reusable)."""
    pgconn = getattr(dbapi_conn, "pgconn", None)  # psycopg 3
    if pgconn is not None:
        fd = pgconn.socket
        sock = socket.socket(fileno=socket.dup(fd))  # our own descriptor, closed below
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
        return
    raw = getattr(dbapi_conn, "_sock", None)  # PyMySQL
    if isinstance(raw, socket.socket):
        raw.shutdown(socket.SHUT_RDWR)
        return
    stop = getattr(dbapi_conn, "interrupt", None)  # sqlite3
    if callable(stop):
        stop()


class Alarm:
    """One armed deadline; `fired` tells whether the connection was interrupted."""

    __slots__ = ("_lock", "cancelled", "dbapi_conn", "fired")

    def __init__(self, dbapi_conn: Any) -> None:
        self.dbapi_conn = dbapi_conn
        self.fired = False
        self.cancelled = False
        self._lock = threading.Lock()

    def fire(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.fired = True
            with contextlib.suppress(Exception):  # a closed socket: nothing left to stop
                interrupt(self.dbapi_conn)

    def cancel(self) -> None:
        """Disarm; after it returns the watchdog never touches the connection."""
        with self._lock:
            self.cancelled = True


class Watchdog:
    """One daemon thread firing the alarms whose deadline (time.monotonic()) has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Alarm]] = []
        self._count = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, dbapi_conn: Any, deadline: float) -> Alarm:
        alarm = Alarm(dbapi_conn)
        with self._wake:
            heapq.heappush(self._heap, (deadline, next(self._count), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="flask-cart-sql-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is alarm:
                self._wake.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait(30)
                    continue
                deadline, _, alarm = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            alarm.fire()


#: The process-wide watchdog of every SQL store.
WATCHDOG = Watchdog()
