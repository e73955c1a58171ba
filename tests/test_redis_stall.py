"""A frozen Redis (SIGSTOP: alive, its kernel still accepting connections) is bounded.

Each test starts a private redis-server on a free port in 7400-7499, freezes it, checks
that every store call raises StoreUnavailable within the store's timeout plus 1 s, thaws
it, and checks that nothing was lost or applied twice.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from flask_cart import Cart
from flask_cart.errors import StoreUnavailable
from flask_cart.lines import Line
from flask_cart.stores.base import CartKey, merge_marker
from flask_cart.stores.redis import RedisStore
from tests.flask.shop import PRODUCTS, build_app, guest_id_of, stored
from tests.test_redis_cluster import _redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]
TIMEOUT = 1.0
BOUND = TIMEOUT + 1.0


def _free_port() -> int:
    for port in range(7400 + os.getpid() % 50, 7500):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 7400-7499")


class PrivateRedis:
    """A redis-server of this test's own, which the test can freeze and thaw."""

    def __init__(self, server: str) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    @contextmanager
    def frozen(self) -> Iterator[None]:
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = _redis_server()
    if server is None:
        pytest.fail("redis-server is not installed: run bash scripts/ensure_services.sh")
    node = PrivateRedis(server)
    yield node
    node.stop()


@pytest.fixture
def stall_store(private_redis: PrivateRedis) -> Iterator[RedisStore]:
    store = RedisStore.from_url(private_redis.url, timeout=TIMEOUT, prefix="stall:")
    yield store
    store.close()


def seconds_to_error(call: Callable[[], Any]) -> float:
    """Run `call`, which must raise StoreUnavailable; the seconds it took."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        call()
    return time.monotonic() - started


def quantities(store: RedisStore, identifier: str) -> dict[str, int]:
    return {p: ln.quantity for p, ln in store.load(CartKey(identifier)).lines.items()}


def test_every_call_on_a_frozen_redis_fails_within_the_timeout(private_redis, stall_store):
    store = stall_store
    customer = Cart("customer:1", store, customer_id="1")
    customer.add("a", 1, 1)
    guest = Cart("guest-1", store)
    guest.add("a", 1, 2)
    guest.add("b", 1, 1)
    sealed = store.seal(guest.key)
    marker = merge_marker(guest.key, sealed)
    checkout = Cart("guest-2", store)
    checkout.add("c", 1, 3)
    owner, limits = customer.owner, customer.limits

    def merge() -> Any:
        return store.merge(
            customer.key, sealed.lines, strategy="sum", marker=marker, owner=owner, limits=limits
        )

    timings: dict[str, float] = {}
    with private_redis.frozen():
        # An idle pooled connection first, then the fresh connections made after a timeout.
        timings["add"] = seconds_to_error(
            lambda: store.add(
                customer.key, Line("a", 1, "1"), owner=owner, limits=limits, op="stalled-add"
            )
        )
        timings["load"] = seconds_to_error(lambda: store.load(customer.key))
        timings["take"] = seconds_to_error(lambda: store.take(checkout.key))
        timings["merge"] = seconds_to_error(merge)
        timings["cart merge"] = seconds_to_error(lambda: customer.merge(Cart("guest-3", store)))
    print(f"seconds to StoreUnavailable, timeout {TIMEOUT:g} s:", timings)
    assert max(timings.values()) < BOUND, timings

    # Thawed: whatever was sent during the stall lands at most once, and retries are safe.
    time.sleep(0.2)
    store.add(customer.key, Line("a", 1, "1"), owner=owner, limits=limits, op="stalled-add")
    merge()
    customer.merge(guest)
    assert quantities(store, "customer:1") == {"a": 4, "b": 1}
    assert not guest.refresh().exists
    assert quantities(store, "guest-2") in ({}, {"c": 3})  # the take may have landed


def test_a_merge_frozen_after_reading_the_cart_fails_within_the_timeout(private_redis):
    """The server freezes right after the merge has read the target cart (mid-merge)."""
    armed = [False]

    class FreezeAfterRead(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            self.last = b"HGETALL" in (command[0] if isinstance(command, list) else command)
            super().send_packed_command(command, check_health)

        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            answer = super().read_response(*args, **kwargs)
            if armed[0] and getattr(self, "last", False):
                armed[0] = False
                private_redis.process.send_signal(signal.SIGSTOP)
            return answer

    pool = redis.ConnectionPool.from_url(
        private_redis.url,
        connection_class=FreezeAfterRead,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    store = RedisStore(redis.Redis(connection_pool=pool), prefix="stall:", timeout=TIMEOUT)
    customer = Cart("customer:1", store, customer_id="1")
    customer.add("a", 1, 1)
    source = {"a": Line("a", 2, "1")}

    def merge() -> Any:
        return store.merge(
            customer.key,
            source,
            strategy="sum",
            marker="m1",
            owner=customer.owner,
            limits=customer.limits,
        )

    armed[0] = True
    try:
        took = seconds_to_error(merge)
    finally:
        private_redis.process.send_signal(signal.SIGCONT)
    print(f"merge frozen after its read: StoreUnavailable after {took:.2f} s")
    assert took < BOUND
    time.sleep(0.2)
    merge()
    merge()
    assert quantities(store, "customer:1") == {"a": 3}
    pool.disconnect()


def test_a_login_merge_on_a_frozen_redis_answers_within_the_timeout(private_redis, stall_store):
    app, _ = build_app(
        stall_store, PRODUCTS, CART_STORE_TIMEOUT=TIMEOUT, CART_HANDLE_STORE_ERRORS=True
    )
    client = app.test_client()
    added = client.post("/cart/items", json={"product_id": "sku-1", "quantity": 2})
    assert added.status_code == 200
    guest = guest_id_of(client)
    assert guest is not None
    with private_redis.frozen():
        started = time.monotonic()
        response = client.post("/login/7")
        took = time.monotonic() - started
        bare = client.get("/")
    print(f"login merge on a frozen Redis: {response.status_code} after {took:.2f} s")
    # The login view reads the cart: it degrades to an empty, `unavailable` cart.
    assert (response.status_code, response.json["quantity"]) == (200, 0)
    assert took < BOUND
    assert bare.status_code == 200
    time.sleep(0.2)
    assert client.post("/login/7").status_code == 200  # the merge is retried, applied once
    assert client.post("/login/7").status_code == 200
    assert stored(stall_store, "customer:7") == {"sku-1": 2}
    assert stored(stall_store, guest) == {}
