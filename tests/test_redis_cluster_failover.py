"""A Redis Cluster failover answers 503 for its second of CLUSTERDOWN, never a 500.

The module starts a cluster of its own on private ports (3 primaries, 3 replicas, a short
``cluster-node-timeout``), kills one primary with SIGKILL while a shop on that cluster
serves badge pages, adds and logins, and checks that every answer was 200 or 503 (an
exception escaping the app is a 500), and that after the replica took over every cart
answers again.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import render_template_string
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from flask_cart.stores.redis import RedisStore
from tests.conftest import IN_CI
from tests.flask.shop import PRODUCTS, add, build_app
from tests.redis_cluster import cluster
from tests.test_redis_cluster import _redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]
PRIMARIES = (7331, 7332, 7333)
REPLICAS = (7334, 7335, 7336)
NODE_TIMEOUT_MS = 1000


@pytest.fixture(scope="module")
def failover_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[int, subprocess.Popen[bytes]]]:
    """The node processes by port, the cluster formed and every replica in sync."""
    server = _redis_server()
    if server is None:
        message = "redis-server is not installed: run bash scripts/ensure_services.sh"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("failover")
    with cluster(server, base, PRIMARIES, REPLICAS, NODE_TIMEOUT_MS) as nodes:
        yield nodes


def _client() -> RedisCluster:
    return RedisCluster(
        host="127.0.0.1",
        port=PRIMARIES[0],
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )


def _ask(call: Any, escaped: list[str]) -> int:
    """The status code of one request; an exception escaping the app counts as a 500."""
    try:
        return int(call().status_code)
    except Exception as exc:  # any escape is what the test looks for
        escaped.append(f"{type(exc).__name__}: {exc}"[:120])
        return 500


def test_a_primary_killed_under_load_answers_200_or_503_never_500(failover_cluster):
    client = _client()
    store = RedisStore(client, prefix=f"fc-failover-{uuid.uuid4().hex[:8]}:", timeout=2)
    app, carts = build_app(store, PRODUCTS, CART_STORE_TIMEOUT=2, CART_SYNC_SECONDS=1)

    @app.get("/page")
    def page() -> str:
        return render_template_string("{{ current_cart.quantity() }}")

    browsers = [app.test_client() for _ in range(12)]  # guest ids spread over every slot range
    for browser in browsers:
        assert add(browser, "sku-1", 1).status_code == 200
    now = time.time()
    carts.clock = lambda: now + 3600  # every page reads the store

    victim = PRIMARIES[1]
    failover_cluster[victim].send_signal(signal.SIGKILL)
    failover_cluster[victim].wait(timeout=10)
    statuses: list[int] = []
    escaped: list[str] = []
    logins = 0
    deadline = time.monotonic() + 25
    recovered_at: float | None = None
    while time.monotonic() < deadline:
        round_statuses = []
        for browser in browsers:
            round_statuses.append(_ask(lambda b=browser: b.get("/page"), escaped))
            round_statuses.append(_ask(lambda b=browser: add(b, "sku-3", 1), escaped))
        newcomer = app.test_client()
        round_statuses.append(_ask(lambda n=newcomer: add(n, "sku-2", 1), escaped))
        logins += 1
        round_statuses.append(_ask(lambda n=newcomer, i=logins: n.post(f"/login/f{i}"), escaped))
        statuses += round_statuses
        if all(s == 200 for s in round_statuses) and 503 in statuses:
            recovered_at = time.monotonic()
            break
    counts = {s: statuses.count(s) for s in set(statuses)}
    print(f"answers during the failover: {counts}")
    assert set(statuses) <= {200, 503}, (counts, sorted(set(escaped)))
    assert 503 in statuses, counts  # the failover was seen, and answered as unavailable
    assert recovered_at is not None, counts
    for browser in browsers:  # after the failover every cart answers again
        assert browser.get("/page").status_code == 200
        assert add(browser, "sku-1", 1).status_code == 200
    client.close()
