"""A store that is down never turns a shop page into a 500.

The shopper's browser first uses the shop on the real store (cookies: the guest id and the
signed snapshot); then the same browser comes back to the same shop (same secret key) whose
store is down: a real server address nobody listens on, or a frozen Redis. Reads of
`current_cart` answer the browser's last copy (else an empty cart) with `unavailable` True;
changes and checkout answer 503; the failure is logged once, with the driver's detail.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from flask import Flask, jsonify, render_template_string

from flask_cart import CartManager, StoreUnavailable, current_cart
from flask_cart.stores.base import CartStore
from flask_cart.stores.failures import PUBLIC_MESSAGE
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.flask.shop import PRODUCTS, add, build_app
from tests.test_redis_stall import private_redis  # noqa: F401 - a fixture
from tests.test_sql_stall import private_pg  # noqa: F401 - a fixture

DEAD_URLS = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:1/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:1/test",
}
#: What no page, flash or body may show of a dead store.
SERVER_WORDS = ("127.0.0.1", ":1", "Error 111", "refused", "psycopg", "pymysql", "redis")


def dead_store(kind: str, tmp_path: Any) -> CartStore:
    """A store of `kind` on a server address nobody listens on (SQLite: a missing folder)."""
    if kind == "redis":
        return RedisStore.from_url("redis://127.0.0.1:1/0", timeout=1, prefix="never:")
    if kind == "sqlite":
        missing = tmp_path / "no-such-folder" / "carts.sqlite3"
        return SQLStore(SQLStore.create_engine(f"sqlite:///{missing}", timeout=1), timeout=1)
    return SQLStore(SQLStore.create_engine(DEAD_URLS[kind], timeout=1), timeout=1)


def shop_pages(app: Flask) -> None:
    """A page whose layout shows the cart badge, and a page that reads the cart in Python."""

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% if current_cart.unavailable %}cart unavailable ({{ current_cart.quantity() }})"
            "{% else %}{{ current_cart.quantity() }} in cart{% endif %}"
        )

    @app.get("/reads")
    def reads() -> Any:
        cart = current_cart
        before = cart.unavailable
        refreshed = cart.refresh()
        return jsonify(
            unavailable=before,
            quantity=cart.quantity(),
            count=cart.count(),
            lines=sorted(cart.get()),
            total=str(cart.total_cost()),
            token=cart.token,
            json_quantity=cart.as_json()["quantity"],
            refreshed=len(refreshed.lines),
            wishlist=app.extensions["cart"].cart("wishlist").quantity(),
            still_unavailable=cart.unavailable,
        )

    @app.post("/shop-add")
    def shop_add() -> Any:
        try:
            current_cart.add_item("sku-2", 1)
        except StoreUnavailable as exc:
            return jsonify(error=exc.message, unavailable=current_cart.unavailable), 503
        return jsonify(ok=True)


@pytest.fixture
def live(cart_store: CartStore) -> tuple[Flask, CartManager]:
    app, carts = build_app(cart_store, PRODUCTS, CART_STORE_TIMEOUT=30)
    return app, carts


def down_shop(kind: str, tmp_path: Any, **config: Any) -> tuple[Flask, CartManager]:
    app, carts = build_app(dead_store(kind, tmp_path), PRODUCTS, **config)
    shop_pages(app)
    return app, carts


def move_browser(source: Any, app: Flask) -> Any:
    """The same browser (its cookies) on `app`."""
    client = app.test_client()
    for name in ("guest_cart_id", "cart_sync", "session", "remember_token"):
        cookie = source.get_cookie(name)
        if cookie is not None:
            client.set_cookie(name, cookie.value)
    return client


def past_the_window(carts: CartManager) -> None:
    """The browser's copy is a day old: a read asks the store."""
    now = time.time()
    carts.clock = lambda: now + 86400


def flask_cart_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flask_cart" and r.levelno == logging.WARNING]


def assert_no_server_detail(text: str) -> None:
    for word in SERVER_WORDS:
        assert word not in text, (word, text)


@pytest.mark.parametrize("mode", ["lazy", "eager"])
def test_a_returning_guest_sees_the_last_copy_when_the_store_is_down(
    live, store_kind, tmp_path, mode, caplog
):
    app, _ = live
    browser = app.test_client()
    assert add(browser, "sku-1", 2).status_code == 200
    down, carts = down_shop(store_kind, tmp_path, CART_RESTORE=mode)
    past_the_window(carts)
    client = move_browser(browser, down)
    caplog.set_level(logging.WARNING, logger="flask_cart")

    response = client.get("/page")
    assert response.status_code == 200, response.data
    assert response.get_data(as_text=True) == "cart unavailable (2)"
    assert response.headers.getlist("Set-Cookie") == []  # the old copy is not renewed
    warnings = flask_cart_warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]

    caplog.clear()
    reads = client.get("/reads").json
    assert reads == {
        "unavailable": True,
        "quantity": 2,
        "count": 1,
        "lines": ["sku-1"],
        "total": "19.98",
        "token": reads["token"],
        "json_quantity": 2,
        "refreshed": 1,
        "wishlist": 0,
        "still_unavailable": True,
    }
    assert len(flask_cart_warnings(caplog)) == 1  # once per request, however many reads


@pytest.mark.parametrize("mode", ["lazy", "eager"])
def test_without_a_copy_the_cart_is_empty_and_unavailable(live, store_kind, tmp_path, mode):
    app, _ = live
    browser = app.test_client()
    assert add(browser, "sku-1", 2).status_code == 200
    browser.delete_cookie("cart_sync")
    down, _ = down_shop(store_kind, tmp_path, CART_RESTORE=mode)
    response = move_browser(browser, down).get("/page")
    assert (response.status_code, response.get_data(as_text=True)) == (
        200,
        "cart unavailable (0)",
    )


def test_a_new_guest_is_not_unavailable(store_kind, tmp_path):
    """A browser with no guest cookie has nothing to read: the store is not asked."""
    down, _ = down_shop(store_kind, tmp_path)
    response = down.test_client().get("/page")
    assert response.get_data(as_text=True) == "0 in cart"


def test_changes_and_checkout_answer_503_without_server_detail(live, store_kind, tmp_path):
    app, _ = live
    browser = app.test_client()
    assert add(browser, "sku-1", 2).status_code == 200
    down, carts = down_shop(store_kind, tmp_path, CART_HANDLE_STORE_ERRORS=True)
    past_the_window(carts)
    client = move_browser(browser, down)
    for response in (
        add(client, "sku-1", 1),
        client.patch("/cart/items/sku-1", json={"quantity": 5}),
        client.delete("/cart/items/sku-1"),
        client.delete("/cart"),
    ):
        assert response.status_code == 503, response.data
        assert response.json["error"] == {"code": "store_unavailable", "message": PUBLIC_MESSAGE}
        assert_no_server_detail(response.get_data(as_text=True))
    checkout = client.post("/checkout")  # the app-wide handler (CART_HANDLE_STORE_ERRORS)
    assert checkout.status_code == 503
    assert_no_server_detail(checkout.get_data(as_text=True))
    shop = client.post("/shop-add")
    assert shop.status_code == 503
    assert shop.json == {"error": PUBLIC_MESSAGE, "unavailable": True}


def test_a_customer_whose_login_merge_meets_a_dead_store_gets_a_page(
    live, store_kind, tmp_path, caplog
):
    app, _ = live
    browser = app.test_client()
    assert add(browser, "sku-1", 2).status_code == 200
    down, _ = down_shop(store_kind, tmp_path)
    client = move_browser(browser, down)
    caplog.set_level(logging.INFO, logger="flask_cart")
    login = client.post("/login/41")  # the login view reads the cart after the merge
    assert login.status_code == 200, login.data
    assert login.json == {"ok": True, "quantity": 0}
    assert len(flask_cart_warnings(caplog)) == 1
    assert client.get_cookie("guest_cart_id") is not None  # the next request retries
    page = client.get("/page")
    assert (page.status_code, page.get_data(as_text=True)) == (200, "cart unavailable (0)")


def test_a_customer_loaded_from_the_remember_cookie_gets_a_page(live, store_kind, tmp_path):
    """Flask-Login's user_loaded_from_cookie merges the guest cart: a dead store degrades."""
    app, _ = live
    customer = app.test_client()
    assert customer.post("/login/42?remember=1").status_code == 200
    remember = customer.get_cookie("remember_token")
    assert remember is not None
    browser = app.test_client()
    assert add(browser, "sku-1", 2).status_code == 200  # a guest cart to merge
    down, _ = down_shop(store_kind, tmp_path)
    client = move_browser(browser, down)
    client.set_cookie("remember_token", remember.value)
    page = client.get("/page")
    assert (page.status_code, page.get_data(as_text=True)) == (200, "cart unavailable (0)")
    assert client.get_cookie("guest_cart_id") is not None  # the next request retries


def test_the_cart_route_answers_503_and_a_bare_page_works(live, store_kind, tmp_path):
    app, _ = live
    browser = app.test_client()
    assert add(browser, "sku-1", 2).status_code == 200
    down, carts = down_shop(store_kind, tmp_path)
    past_the_window(carts)
    client = move_browser(browser, down)
    assert client.get("/").status_code == 200
    response = client.get("/cart")
    assert response.status_code == 503
    assert response.json["error"]["message"] == PUBLIC_MESSAGE


@pytest.mark.redis
@pytest.mark.slow
def test_a_frozen_redis_is_bounded_like_a_dead_one(private_redis):  # noqa: F811
    store = RedisStore.from_url(private_redis.url, timeout=1.0, prefix="frozen:")
    try:
        app, carts = build_app(store, PRODUCTS, CART_STORE_TIMEOUT=1.0, CART_RESTORE="eager")
        shop_pages(app)
        client = app.test_client()
        assert add(client, "sku-1", 3).status_code == 200
        past_the_window(carts)
        with private_redis.frozen():
            started = time.monotonic()
            response = client.get("/reads")
            took = time.monotonic() - started
        assert response.status_code == 200, response.data
        assert (response.json["unavailable"], response.json["quantity"]) == (True, 3)
        assert took < 2.5, took  # one timeout for the whole request, not one per read
        time.sleep(0.2)
        again = client.get("/page")
        assert again.get_data(as_text=True) == "3 in cart"
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_frozen_postgres_is_bounded_like_a_dead_one(private_pg):  # noqa: F811
    timeout = 2.0  # libpq connects in whole seconds, at least 2
    engine = SQLStore.create_engine(private_pg.url, timeout=timeout)
    store = SQLStore(engine, table_name="frozen_page", timeout=timeout)
    store.create_all()
    try:
        app, carts = build_app(store, PRODUCTS, CART_STORE_TIMEOUT=timeout)
        shop_pages(app)
        client = app.test_client()
        assert add(client, "sku-1", 3).status_code == 200
        past_the_window(carts)
        with private_pg.frozen():
            started = time.monotonic()
            response = client.get("/reads")
            took = time.monotonic() - started
            bare = client.get("/")
        assert response.status_code == 200, response.data
        assert (response.json["unavailable"], response.json["quantity"]) == (True, 3)
        assert took < timeout + 1.5, took  # one deadline for the whole request
        assert bare.status_code == 200
        again = client.get("/page")
        assert again.get_data(as_text=True) == "3 in cart"
    finally:
        for table in reversed(store.table.metadata.sorted_tables):
            table.drop(engine, checkfirst=True)
        engine.dispose()
