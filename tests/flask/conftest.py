"""Fixtures for the Flask integration: the test shop on every store, clients, counters.

`app` (pytest-flask's fixture) is the shop of tests/flask/shop.py, parametrized over SQLite,
PostgreSQL and Redis through `store_kind`. Each test gets its own store (a table or a key
prefix of its own, removed afterwards) whose round trips `round_trips` counts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_cart import CartManager
from flask_cart.stores.base import CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.conftest import GENEROUS_TIMEOUT, delete_prefix, test_name
from tests.flask.shop import PRODUCTS, Counter, build_app, count_sql, counting_redis


@pytest.fixture
def products() -> dict[str, dict[str, Any]]:
    """The catalogue the app's product_loader reads (tests may change prices and stock)."""
    return copy.deepcopy(PRODUCTS)


@pytest.fixture
def round_trips() -> Counter:
    return Counter()


@pytest.fixture
def cart_store(
    request: pytest.FixtureRequest, store_kind: str, make_store: Any, round_trips: Counter
) -> Iterator[CartStore]:
    """A fresh store of `store_kind` whose round trips `round_trips` counts."""
    if store_kind == "redis":
        request.getfixturevalue("redis_client")  # fails the test early when Redis is down
        client = counting_redis(round_trips)
        prefix = f"{test_name()}:"
        yield RedisStore(client, prefix=prefix, timeout=GENEROUS_TIMEOUT)
        delete_prefix(client, prefix)
        client.close()
        return
    store = make_store(store_kind)
    assert isinstance(store, SQLStore)
    remove = count_sql(store.engine, round_trips)
    yield store
    remove()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra config for the `app` fixture (override in a module or a test)."""
    return {}


@pytest.fixture
def shop(
    cart_store: CartStore, products: dict[str, dict[str, Any]], app_config: dict[str, Any]
) -> tuple[Flask, CartManager]:
    return build_app(cart_store, products, **app_config)


@pytest.fixture
def app(shop: tuple[Flask, CartManager]) -> Flask:
    return shop[0]


@pytest.fixture
def carts(shop: tuple[Flask, CartManager]) -> CartManager:
    return shop[1]


@pytest.fixture
def new_client(app: Flask) -> Callable[[], Any]:
    """Another browser (device) on the same shop."""
    return app.test_client
