"""Every error meaning "the store cannot answer now" is StoreUnavailable, and its message
names nothing of the server: the driver's detail goes to the ``flask_cart`` logger.

Provoked for real where a server can show it: a dead port (Redis, PostgreSQL, MariaDB), a
PostgreSQL role that does not exist, a MariaDB user that does not exist, a PostgreSQL
session that is read-only on the server side (as on a hot standby after a fail-over), a
MariaDB read-only transaction, a Redis that refuses writes without replicas
(``min-replicas-to-write``), and a Redis replica (``READONLY``), both on private ports.
Errors that need a failing-over cluster or a loading server are checked by class and
prefix here (the cluster itself: tests/test_redis_cluster_failover.py).
"""

from __future__ import annotations

import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from flask_cart import Cart, StoreUnavailable
from flask_cart.stores.base import CartStore
from flask_cart.stores.failures import PUBLIC_MESSAGE, redis_cannot_answer, sql_cannot_answer
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.conftest import IN_CI, MARIADB_URL, POSTGRES_URL, drop_store_tables
from tests.flask.shop import PRODUCTS, build_app
from tests.test_redis_cluster import _redis_server

#: Private ports of the standalone servers this module starts (not used elsewhere).
NOREPLICAS_PORT = 7341
PRIMARY_PORT, REPLICA_PORT = 7342, 7343
#: Words of a server's detail that no shopper may read.
SERVER_WORDS = (
    "127.0.0.1",
    "localhost",
    "5432",
    "3306",
    "shopuser",
    "psycopg",
    "pymysql",
    "redis",
    "Redis",
    "SQL",
    "Error 111",
    "refused",
    "denied",
    "role",
    "INSERT",
    "SELECT",
)


def flask_cart_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_cart" and r.levelno == logging.WARNING
    ]


def assert_public(exc: StoreUnavailable) -> None:
    assert exc.message == PUBLIC_MESSAGE
    for word in SERVER_WORDS:
        assert word not in str(exc), word
        assert word not in str(exc.to_dict()), word


def sql_url(base: str, *, user: str | None = None, port: int | None = None) -> sa.URL:
    url = sa.make_url(base)
    if user is not None:
        url = url.set(username=user)
    if port is not None:
        url = url.set(port=port)
    return url


def broken(kind: str) -> CartStore:
    """A store whose server refuses it: a dead port, an unknown role or user."""
    if kind == "redis-dead":
        return RedisStore.from_url("redis://127.0.0.1:1/0", timeout=1)
    if kind == "postgres-dead":
        return SQLStore(SQLStore.create_engine(sql_url(POSTGRES_URL, port=1), timeout=2))
    if kind == "postgres-role":
        return SQLStore(SQLStore.create_engine(sql_url(POSTGRES_URL, user="shopuser"), timeout=5))
    if kind == "mariadb-dead":
        return SQLStore(SQLStore.create_engine(sql_url(MARIADB_URL, port=1), timeout=2))
    if kind == "mariadb-user":
        return SQLStore(SQLStore.create_engine(sql_url(MARIADB_URL, user="shopuser"), timeout=5))
    raise ValueError(kind)


BROKEN = [
    pytest.param("redis-dead", "Error 111 connecting to 127.0.0.1:1", marks=pytest.mark.redis),
    pytest.param("postgres-dead", "127.0.0.1", marks=pytest.mark.postgres),
    pytest.param("postgres-role", 'role "shopuser" does not exist', marks=pytest.mark.postgres),
    pytest.param("mariadb-dead", "127.0.0.1", marks=pytest.mark.mariadb),
    pytest.param("mariadb-user", "shopuser", marks=pytest.mark.mariadb),
]


@pytest.mark.parametrize(("kind", "detail"), BROKEN)
def test_a_refused_store_says_only_that_the_cart_is_unavailable(kind, detail, caplog):
    caplog.set_level(logging.WARNING, logger="flask_cart")
    cart = Cart("u1", broken(kind))
    for call in (cart.refresh, lambda: cart.add("sku-1", "1.00"), cart.checkout):
        caplog.clear()
        with pytest.raises(StoreUnavailable) as raised:
            call()
        assert_public(raised.value)
        warnings = flask_cart_warnings(caplog)
        assert len(warnings) == 1, warnings  # once per failure
        assert detail in warnings[0]


@pytest.mark.parametrize(("kind", "detail"), BROKEN)
def test_no_server_detail_reaches_a_shopper(kind, detail, caplog):
    """The JSON body of a cart route, and a form post's answer and flashes."""
    caplog.set_level(logging.WARNING, logger="flask_cart")
    app, _ = build_app(broken(kind), PRODUCTS, CART_HANDLE_STORE_ERRORS=True)
    client = app.test_client()
    answers = [
        client.post("/cart/items", json={"product_id": "sku-1"}),
        client.post("/cart/items", data={"product_id": "sku-1", "next": "/"}),
        client.post("/login/7"),
    ]
    with client.session_transaction() as session:
        flashes = str(session.get("_flashes", []))
    for response in answers:
        assert response.status_code in (200, 303, 503), response.data
        body = response.get_data(as_text=True) + flashes
        for word in SERVER_WORDS:
            assert word not in body, (word, body)
    assert answers[0].status_code == 503
    assert any(detail in message for message in flask_cart_warnings(caplog))


# -- SQL: a database that cannot answer now, by SQLSTATE and error number ----------------------


@pytest.fixture
def read_only_store(request: pytest.FixtureRequest) -> Iterator[SQLStore]:
    """A store whose table exists, on an engine whose sessions the server keeps read-only."""
    kind = request.param
    base = POSTGRES_URL if kind == "postgres" else MARIADB_URL
    writer = sa.create_engine(base)
    try:
        with writer.connect():
            pass
    except sa.exc.OperationalError:
        if IN_CI:
            pytest.fail(f"{kind} does not answer", pytrace=False)
        pytest.skip(f"{kind} does not answer")
    name = f"fc_ro_{uuid.uuid4().hex[:8]}"
    made = SQLStore(writer, table_name=name, timeout=30)
    made.create_all()
    if kind == "postgres":
        args = {"options": "-c default_transaction_read_only=on"}
    else:
        args = {"init_command": "SET SESSION TRANSACTION READ ONLY"}
    engine = sa.create_engine(base, connect_args=args)
    yield SQLStore(engine, table_name=name, timeout=30)
    engine.dispose()
    drop_store_tables(made, writer)
    writer.dispose()


@pytest.mark.parametrize(
    "read_only_store",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
    indirect=True,
)
def test_a_read_only_database_after_a_fail_over_is_unavailable(read_only_store, caplog):
    caplog.set_level(logging.WARNING, logger="flask_cart")
    cart = Cart("u1", read_only_store)
    assert cart.count() == 0  # reads still work on a read-only database
    with pytest.raises(StoreUnavailable) as raised:
        cart.add("sku-1", "1.00")
    assert_public(raised.value)
    (warning,) = flask_cart_warnings(caplog)
    assert "read" in warning.lower() and "only" in warning.lower()


@pytest.mark.parametrize(
    "read_only_store",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
    indirect=True,
)
def test_a_change_on_a_read_only_database_answers_503(read_only_store):
    app, _ = build_app(read_only_store, PRODUCTS, CART_STORE_TIMEOUT=30)
    response = app.test_client().post("/cart/items", json={"product_id": "sku-1"})
    assert response.status_code == 503
    assert response.json["error"] == {"code": "store_unavailable", "message": PUBLIC_MESSAGE}


def test_sql_errors_are_mapped_by_code_not_by_text():
    import psycopg
    import pymysql

    for state in ("25006", "57P01", "57P02", "57P03", "08006", "53300"):
        assert sql_cannot_answer(psycopg.errors.lookup(state)("any text")), state
    assert not sql_cannot_answer(psycopg.errors.lookup("23505")("read-only connection refused"))
    for number in (1290, 1792, 1836, 1053, 2013):
        assert sql_cannot_answer(pymysql.err.OperationalError(number, "any text")), number
    assert not sql_cannot_answer(pymysql.err.IntegrityError(1062, "read-only replica refused"))


# -- Redis: NOREPLICAS, READONLY for real; the others by class and prefix ----------------------


def start_redis(port: int, *args: str) -> subprocess.Popen[bytes]:
    server = _redis_server()
    if server is None:
        message = "redis-server is not installed: run bash scripts/ensure_services.sh"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port, socket_timeout=1).ping()
            return process
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=10)


@pytest.fixture
def no_replicas() -> Iterator[RedisStore]:
    """A Redis that takes writes only with a replica attached, and has none."""
    process = start_redis(NOREPLICAS_PORT, "--min-replicas-to-write", "1")
    store = RedisStore.from_url(f"redis://127.0.0.1:{NOREPLICAS_PORT}/0", timeout=5)
    yield store
    store.close()
    stop(process)


@pytest.fixture
def replica() -> Iterator[RedisStore]:
    """A store on a read-only replica of a private primary."""
    primary = start_redis(PRIMARY_PORT)
    follower = start_redis(REPLICA_PORT, "--replicaof", "127.0.0.1", str(PRIMARY_PORT))
    store = RedisStore.from_url(f"redis://127.0.0.1:{REPLICA_PORT}/0", timeout=5)
    yield store
    store.close()
    stop(follower)
    stop(primary)


@pytest.mark.redis
def test_noreplicas_is_unavailable(no_replicas, caplog):
    caplog.set_level(logging.WARNING, logger="flask_cart")
    cart = Cart("u1", no_replicas)
    assert cart.count() == 0
    with pytest.raises(StoreUnavailable) as raised:
        cart.add("sku-1", "1.00")  # a Lua script's write: the error comes through EVALSHA
    assert_public(raised.value)
    assert any("NOREPLICAS" in w for w in flask_cart_warnings(caplog))
    with pytest.raises(StoreUnavailable):
        cart.destroy()  # a plain command's write


@pytest.mark.redis
def test_a_read_only_replica_is_unavailable(replica, caplog):
    caplog.set_level(logging.WARNING, logger="flask_cart")
    cart = Cart("u1", replica)
    assert cart.count() == 0
    with pytest.raises(StoreUnavailable) as raised:
        cart.add("sku-1", "1.00")
    assert_public(raised.value)
    assert any("read only replica" in w for w in flask_cart_warnings(caplog))


@pytest.mark.parametrize(
    "error",
    [
        pytest.param("ClusterDownError", id="CLUSTERDOWN"),
        pytest.param("TryAgainError", id="TRYAGAIN"),
        pytest.param("MasterDownError", id="MASTERDOWN"),
        pytest.param("ReadOnlyError", id="READONLY"),
        pytest.param("BusyLoadingError", id="LOADING"),
        pytest.param("SlotNotCoveredError", id="slot-not-covered"),
    ],
)
def test_redis_cluster_errors_map_by_class(error):
    cls: Any = getattr(redis.exceptions, error)
    assert redis_cannot_answer(cls("The cluster is down"))


@pytest.mark.parametrize(
    "message",
    [
        "Redis Cluster cannot be connected. Please provide at least one reachable node: x",
        "All slots are not covered after query all startup_nodes. 10923 of 16384 covered...",
    ],
)
def test_a_cluster_layout_that_cannot_be_read_now_is_unavailable(message):
    assert redis_cannot_answer(redis.exceptions.RedisClusterException(message))
    assert not redis_cannot_answer(redis.exceptions.RedisClusterException("eval() is not"))


@pytest.mark.parametrize(
    "reply",
    [
        "CLUSTERDOWN The cluster is down",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "READONLY You can't write against a read only replica.",
        "NOREPLICAS Not enough good replicas to write.",
        "LOADING Redis is loading the dataset in memory",
        "ERR Error running script (call to f_0123): @user_script:12: -NOREPLICAS Not enough",
    ],
)
def test_redis_replies_map_by_prefix_as_the_parser_gives_them(reply):
    """The class redis-py's parser makes of the reply (a script's included), then the map."""
    from redis._parsers.base import BaseParser

    assert redis_cannot_answer(BaseParser.parse_error(reply))


@pytest.mark.parametrize(
    "reply",
    ["ERR unknown command 'HGETALLX'", "WRONGTYPE Operation against a key", "NOSCRIPT No script"],
)
def test_other_redis_errors_are_not_unavailable(reply):
    from redis._parsers.base import BaseParser

    assert not redis_cannot_answer(BaseParser.parse_error(reply))


def test_a_script_the_server_does_not_know_is_loaded_and_the_change_applied_once(make_store):
    """NOSCRIPT (a Redis restarted, or its scripts flushed): the script is loaded again and
    the change runs once. A wrong SHA stands in for the flush, which would empty the shared
    server's script cache for everyone."""
    store = make_store("redis")
    assert isinstance(store, RedisStore)
    cart = Cart("noscript", store)
    cart.add("sku-1", "9.99", 2)
    script = store._scripts["add"]
    right = script.sha
    script.sha = "0" * 40
    cart.add("sku-1", "9.99", 1)
    assert script.sha == right
    assert Cart("noscript", store).quantity() == 3
