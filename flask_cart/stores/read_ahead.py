"""Read ahead: a read-only iterator of batches run one batch ahead in a thread.

``flask cart abandoned`` reads a batch, claims it, and sends its reports before it claims
the next. The reads (``SCAN`` on Redis, the keyset walk on SQL) claim nothing, so the next
one can run while the caller works on the current batch: the store's round trip overlaps
the caller's CPU instead of adding to it. Claims stay in the caller's thread, one batch at
a time, so a run killed half-way still leaves at most one batch claimed and unsent.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: How often a producer blocked on a full queue checks whether the caller has stopped.
POLL_SECONDS = 0.05


def read_ahead(batches: Iterator[T], depth: int = 1) -> Iterator[T]:
    """What `batches` yields, in order, with up to `depth` batches fetched ahead in a
    daemon thread that runs in a copy of the caller's context. An exception raised by
    `batches` is raised here, after the batches before it; closing this generator stops
    the thread (and closes `batches`) at its next batch."""
    ahead: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for batch in batches:
                if not put((True, batch)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the caller's thread, raised there
            put((False, exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    # The caller's context variables (Flask's app context among them: an engine from
    # Flask-SQLAlchemy's ``db.engine`` needs ``current_app``) go with the thread.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(fill,), name="flask-cart-read-ahead", daemon=True
    )
    thread.start()
    try:
        while True:
            more, item = ahead.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item
    finally:
        stop.set()


__all__ = ["read_ahead"]
