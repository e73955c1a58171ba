"""flask_cart.stores.read_ahead: order, errors, the bound on reading ahead, and stopping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from flask_cart.stores.read_ahead import read_ahead


def counted(n: int, taken: list[int], closed: threading.Event) -> Iterator[int]:
    try:
        for i in range(n):
            taken.append(i)
            yield i
    finally:
        closed.set()


def wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_yields_everything_in_order() -> None:
    closed = threading.Event()
    assert list(read_ahead(counted(50, [], closed))) == list(range(50))
    assert closed.wait(5)


def test_an_error_comes_after_the_batches_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("store went away")

    got = []
    with pytest.raises(ConnectionError, match="store went away"):
        for batch in read_ahead(failing()):
            got.append(batch)
    assert got == [1, 2]


def test_reads_at_most_depth_batches_ahead() -> None:
    taken: list[int] = []
    closed = threading.Event()
    ahead = read_ahead(counted(100, taken, closed), depth=1)
    assert next(ahead) == 0
    wait_until(lambda: len(taken) >= 3)
    time.sleep(0.2)
    # one handed over, one waiting in the queue, one read and waiting to be queued
    assert len(taken) == 3
    ahead.close()


def test_closing_stops_the_thread_and_closes_the_source() -> None:
    taken: list[int] = []
    closed = threading.Event()
    ahead = read_ahead(counted(100, taken, closed))
    assert next(ahead) == 0
    ahead.close()
    assert closed.wait(5), "the source generator was not closed"
    wait_until(lambda: not any(t.name == "flask-cart-read-ahead" for t in threading.enumerate()))
    assert not any(t.name == "flask-cart-read-ahead" for t in threading.enumerate())
    assert len(taken) <= 3
