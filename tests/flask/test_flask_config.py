"""init_app: registration, config defaults, the store built from config on every backend."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from redis.backoff import NoBackoff
from redis.retry import Retry

from flask_cart import CartManager, current_cart
from flask_cart.config import DEFAULTS
from flask_cart.stores.base import CartKey
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.conftest import (
    MARIADB_URL,
    POSTGRES_URL,
    SERVER_ENGINES,
    delete_prefix,
    drop_carts_tables,
    drop_store_tables,
    test_name,
)
from tests.flask.shop import FLASK_REDIS_URL, PRODUCTS, add, guest_id_of

CONTRACT_DEFAULTS = {
    "CART_STORE": "sqlalchemy",
    "CART_DATABASE_URI": None,
    "CART_REDIS_URL": "redis://localhost:6379/0",
    "CART_REDIS": None,
    "CART_COOKIE_NAME": "guest_cart_id",
    "CART_COOKIE_SECURE": None,
    "CART_COOKIE_SAMESITE": "Lax",
    "CART_GUEST_DAYS": 30,
    "CART_CUSTOMER_DAYS": 90,
    "CART_SYNC_SECONDS": 30,
    "CART_URL_PREFIX": "/cart",
    "CART_MAX_LINE_QUANTITY": 999,
    "CART_MAX_LINES": 100,
    "CART_MERGE_STRATEGY": "sum",
    "CART_CURRENCY": "USD",
    "CART_INSTANCES": ("cart", "wishlist"),
}


def make_app(tmp_path: Any, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update({"SECRET_KEY": "k", "TESTING": True, **config})
    return app


def with_loader(carts: CartManager) -> CartManager:
    carts.product_loader(PRODUCTS.get)
    return carts


def test_defaults_and_registration(tmp_path):
    app = make_app(tmp_path, CART_CURRENCY="EUR")
    carts = CartManager()
    carts.init_app(app)
    for key, value in CONTRACT_DEFAULTS.items():
        if key != "CART_CURRENCY":
            assert app.config[key] == value, key
    assert app.config["CART_CURRENCY"] == "EUR"
    assert set(CONTRACT_DEFAULTS) <= set(DEFAULTS)
    assert app.extensions["cart"] is carts
    with pytest.raises(RuntimeError, match="already been registered"):
        carts.init_app(app)
    with pytest.raises(RuntimeError, match="already been registered"):
        CartManager(app)
    assert not hasattr(carts, "app")
    assert "cart" in app.cli.commands  # flask cart cleanup


def test_one_manager_on_two_apps(tmp_path, make_store):
    carts = with_loader(CartManager())
    first = make_app(tmp_path / "a", CART_STORE=make_store("sqlite"))
    second = make_app(tmp_path / "b", CART_STORE=make_store("sqlite"), CART_URL_PREFIX="/basket")
    carts.init_app(first)
    carts.init_app(second)
    add(first.test_client(), "sku-1")
    assert (
        second.test_client().post("/basket/items", json={"product_id": "sku-2"}).json["quantity"]
        == 1
    )
    with first.app_context():
        assert carts.get_store() is not carts.get_store(second)


def test_sqlite_default_in_the_instance_folder(tmp_path):
    app = make_app(tmp_path)
    carts = with_loader(CartManager(app))
    path = tmp_path / "instance" / "flask_cart.sqlite3"
    client = app.test_client()
    assert client.get("/").status_code == 404
    assert not path.exists()  # nothing touched yet
    assert add(client, "sku-1").status_code == 200  # the table is made on first use
    assert path.exists()
    with app.app_context():
        store = carts.get_store()
        assert isinstance(store, SQLStore)
        assert store.load(CartKey(guest_id_of(client))).lines["sku-1"].quantity == 1
        carts.create_tables()  # again: harmless
    store.engine.dispose()


SERVER_URLS = {"postgres": POSTGRES_URL, "mariadb": MARIADB_URL}
SERVER_BACKENDS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.mark.parametrize("backend", ["sqlite", *SERVER_BACKENDS])
def test_flask_sqlalchemy_db(tmp_path, backend, request):
    if backend in SERVER_URLS:
        request.getfixturevalue(SERVER_ENGINES[backend])
        uri = SERVER_URLS[backend]
    else:
        uri = f"sqlite:///{tmp_path}/app.sqlite3"
    table = test_name()
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=uri, CART_TABLE_NAME=table)
    db = SQLAlchemy(app)
    carts = with_loader(CartManager(app, db=db))
    assert table in db.metadata.tables  # Alembic autogenerate sees it
    with app.app_context():
        db.create_all()
        assert sa.inspect(db.engine).has_table(table)
        assert sa.inspect(db.engine).has_table(f"{table}_keys")  # Idempotency-Key records
    try:
        client = app.test_client()
        assert add(client, "sku-1", 2).status_code == 200
        with app.app_context():
            store = carts.get_store()
            assert store.engine is db.engine
            assert store.load(CartKey(guest_id_of(client))).lines["sku-1"].quantity == 2
    finally:
        with app.app_context():
            drop_carts_tables(db.metadata, table, db.engine)  # _contacts too
            db.engine.dispose()


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_database_uri_and_create_tables(tmp_path, backend, request):
    server_engine = request.getfixturevalue(SERVER_ENGINES[backend])
    table = test_name()
    app = make_app(tmp_path, CART_DATABASE_URI=SERVER_URLS[backend], CART_TABLE_NAME=table)
    carts = with_loader(CartManager(app))
    with app.app_context():
        carts.create_tables()
        store = carts.get_store()
    try:
        assert sa.inspect(server_engine).has_table(table)
        client = app.test_client()
        assert add(client, "sku-1").status_code == 200
    finally:
        drop_store_tables(store, server_engine)
        store.engine.dispose()


@pytest.mark.redis
def test_redis_from_url_and_from_client(tmp_path, redis_client):
    prefix = f"{test_name()}:"
    app = make_app(
        tmp_path,
        CART_STORE="redis",
        CART_REDIS_URL=FLASK_REDIS_URL,
        CART_KEY_PREFIX=prefix,
        CART_REDIS_TIMEOUT=1.5,
    )
    carts = with_loader(CartManager(app))
    client = redis.Redis.from_url(FLASK_REDIS_URL)
    try:
        browser = app.test_client()
        assert add(browser, "sku-1").status_code == 200
        with app.app_context():
            store = carts.get_store()
        assert isinstance(store, RedisStore)
        assert store.client.connection_pool.connection_kwargs["socket_timeout"] == 1.5
        assert client.exists(store.key(CartKey(guest_id_of(browser))))
        own = make_app(tmp_path, CART_STORE="redis", CART_REDIS=client, CART_KEY_PREFIX=prefix)
        CartManager(own)
        with own.app_context():
            assert own.extensions["cart"].get_store().client is client
    finally:
        delete_prefix(client, prefix)
        client.close()


@pytest.mark.redis
def test_a_caller_supplied_redis_client_that_may_wait_long_is_warned_about(tmp_path, caplog):
    """CART_STORE_TIMEOUT cannot reach a client the shop built: its own socket timeout and
    retries bound a stalled Redis, so flask-cart says when they exceed the setting."""
    patient = redis.Redis.from_url(FLASK_REDIS_URL)  # redis-py's defaults: 5 s, 10 retries
    bounded = redis.Redis.from_url(
        FLASK_REDIS_URL, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        for client, warned in ((patient, True), (bounded, False)):
            caplog.clear()
            app = make_app(tmp_path, CART_STORE="redis", CART_REDIS=client, CART_STORE_TIMEOUT=1)
            carts = CartManager(app)
            with caplog.at_level(logging.WARNING, logger="flask_cart"), app.app_context():
                carts.get_store()
            assert ("CART_REDIS client may wait" in caplog.text) is warned, caplog.text
    finally:
        patient.close()
        bounded.close()


class MyStore(SQLStore):
    """A store named by dotted path, built from CART_STORE_OPTIONS."""

    def __init__(self, url: str, table_name: str) -> None:
        super().__init__(sa.create_engine(url), table_name=table_name)
        self.create_all()


def test_store_by_dotted_path(tmp_path):
    app = make_app(
        tmp_path,
        CART_STORE=f"{__name__}.MyStore",
        CART_STORE_OPTIONS={"url": f"sqlite:///{tmp_path}/own.sqlite3", "table_name": "carts"},
    )
    carts = with_loader(CartManager(app))
    assert add(app.test_client(), "sku-1").status_code == 200
    with app.app_context():
        assert isinstance(carts.get_store(), MyStore)


def test_blueprint_can_be_left_out(tmp_path, make_store):
    app = make_app(tmp_path, CART_STORE=make_store("sqlite"), CART_BLUEPRINT=False)
    CartManager(app)  # no product_loader: the ecart API's prices are kept as given

    @app.get("/mine")
    def mine() -> str:
        current_cart.add("sku-1", "2.50", 2)
        return str(current_cart.total_cost())

    client = app.test_client()
    assert client.get("/cart").status_code == 404
    assert client.get("/mine").text == "5.00"
    assert "cart" in app.cli.commands


def test_current_cart_needs_a_request(tmp_path, make_store):
    app = make_app(tmp_path, CART_STORE=make_store("sqlite"))
    CartManager(app)
    with app.app_context(), pytest.raises(RuntimeError, match="request"):
        current_cart.count()


def test_secret_key_is_required(tmp_path, make_store):
    app = make_app(tmp_path, CART_STORE=make_store("sqlite"), SECRET_KEY=None)
    with_loader(CartManager(app))
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        add(app.test_client(), "sku-1")


def test_secret_key_rotation_keeps_carts(tmp_path, make_store):
    app = make_app(tmp_path, CART_STORE=make_store("sqlite"), SECRET_KEY="old")
    with_loader(CartManager(app))
    client = app.test_client()
    add(client, "sku-1", 2)
    app.config.update(SECRET_KEY="new", SECRET_KEY_FALLBACKS=["old"])
    app.secret_key = "new"
    assert client.get("/cart").json["quantity"] == 2


@pytest.mark.parametrize(
    "config",
    [
        {"CART_MERGE_STRATEGY": "min"},
        {"CART_INSTANCES": ("wishlist",)},
        {"CART_MAX_LINES": 0},
        {"CART_GUEST_DAYS": -1},
        {"CART_STORE": 42},
    ],
)
def test_bad_config_fails_at_init(tmp_path, config):
    with pytest.raises((ValueError, TypeError)):
        CartManager(make_app(tmp_path, **config))


def test_works_without_flask_login_views(tmp_path, make_store):
    """No LoginManager on the app: everyone is a guest."""
    app = make_app(tmp_path, CART_STORE=make_store("sqlite"))
    with_loader(CartManager(app))
    client = app.test_client()
    assert add(client, "sku-1").status_code == 200
    assert client.get("/cart").json["quantity"] == 1
    assert os.environ.get("NOTHING_LEAKED") is None
