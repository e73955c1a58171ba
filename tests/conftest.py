"""Shared fixtures: real stores on SQLite, PostgreSQL, MariaDB and Redis, isolated per test.

PostgreSQL and MariaDB tables and Redis keys are named per test run and per test; teardown
removes only what the test created. A server that does not answer fails the run under
CI=true (and for Redis always); locally the PostgreSQL and MariaDB tests skip with a
message saying how to enable them.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from flask_cart.stores.base import CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore

REDIS_URL = os.environ.get("CART_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "CART_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "CART_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_ID = uuid.uuid4().hex[:8]
_counter = itertools.count()

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
#: The SQL stores on a server (SQLite serialises every writer).
SQL_SERVERS = ("postgres", "mariadb")
#: The store deadline of tests that are not about deadlines: a loaded machine (load average
#: 10 to 20) must not turn a slow answer into a StoreUnavailable there. Tests of a deadline
#: give their store the timeout they test (``make_store(kind, timeout=2.0)``).
GENEROUS_TIMEOUT = 30.0


def unavailable(what: str, how: str) -> None:
    message = f"{what} does not answer. Start it with: bash scripts/ensure_services.sh ({how})"
    if IN_CI or what.startswith("Redis"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        unavailable(f"Redis at {REDIS_URL}", "or: make test, which starts it")
    yield client
    client.close()


def server_engine(url: str, what: str, variable: str) -> Iterator[sa.Engine]:
    """A pooled engine on a test server that answers, or a failure saying how to start it."""
    engine = sa.create_engine(url, pool_size=10, max_overflow=10)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError:
        unavailable(f"{what} at {url}", f"set {variable} to use another")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[sa.Engine]:
    yield from server_engine(POSTGRES_URL, "PostgreSQL", "CART_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def mariadb_engine() -> Iterator[sa.Engine]:
    yield from server_engine(MARIADB_URL, "MariaDB", "CART_TEST_MARIADB_URL")


#: The session engine fixture of each SQL server store kind.
SERVER_ENGINES = {"postgres": "pg_engine", "mariadb": "mariadb_engine"}


def test_name() -> str:
    """A name unique to this test in this run (for tables and key prefixes)."""
    return f"fc_test_{RUN_ID}_{next(_counter)}"


test_name.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def delete_prefix(client: Any, prefix: str) -> None:
    """Delete the keys under `prefix` (SCAN, never KEYS or FLUSH)."""
    batch = []
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


def drop_store_tables(store: SQLStore, engine: sa.Engine) -> None:
    """Drop every table a test store's ``create_all`` made: the carts table and the tables
    named after it on its metadata (claims, keys, contacts, and any added later)."""
    drop_carts_tables(store.table.metadata, store.table.name, engine)


def drop_carts_tables(metadata: sa.MetaData, name: str, engine: sa.Engine) -> None:
    """Drop the carts table `name` and the tables named after it (``name_*``) on `metadata`."""
    own = [t for t in metadata.sorted_tables if t.name == name or t.name.startswith(f"{name}_")]
    metadata.drop_all(engine, tables=own, checkfirst=True)


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """Factory: make_store(kind) -> a fresh, empty store of that kind."""
    cleanups: list[Any] = []

    def make(kind: str, timeout: float = GENEROUS_TIMEOUT) -> CartStore:
        name = test_name()
        if kind == "sqlite":
            engine = sa.create_engine(f"sqlite:///{tmp_path / name}.sqlite3")
            store: CartStore = SQLStore(engine, table_name=name, timeout=timeout)
            store.create_all()
            cleanups.append(engine.dispose)
        elif kind in SERVER_ENGINES:
            engine = request.getfixturevalue(SERVER_ENGINES[kind])
            store = SQLStore(engine, table_name=name, timeout=timeout)
            store.create_all()
            cleanups.append(lambda s=store, e=engine: drop_store_tables(s, e))
        elif kind == "redis":
            client = request.getfixturevalue("redis_client")
            store = RedisStore(client, prefix=f"{name}:", timeout=timeout)
            cleanups.append(lambda p=f"{name}:", c=client: delete_prefix(c, p))
        else:
            raise ValueError(kind)
        return store

    yield make
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(make_store: Any, store_kind: str) -> CartStore:
    return make_store(store_kind)  # type: ignore[no-any-return]
