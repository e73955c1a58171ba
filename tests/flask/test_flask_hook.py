"""The app-wide request hook, in both CART_RESTORE modes, on every store.

Round trips are counted on the real servers (see test_flask_sync.py). A dead store is a real
server address nobody listens on (or, for SQLite, a file that cannot be opened).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from itsdangerous import Signer

from flask_cart import CartManager
from flask_cart.context import finish_request, prepare_request
from flask_cart.identity import GUEST_SALT
from flask_cart.stores.base import CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.flask.shop import SECRET, add, build_app

DEAD_URLS = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:1/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:1/test",
}


def trips(round_trips: Any, client: Any, path: str = "/") -> tuple[int, Any]:
    round_trips.reset()
    response = client.get(path)
    assert response.status_code == 200, response.data
    return int(round_trips.value), response


def hooks(app: Flask) -> list[Any]:
    """The app-wide hooks flask-cart registered."""
    before = [f for f in app.before_request_funcs.get(None, []) if f is prepare_request]
    after = [f for f in app.after_request_funcs.get(None, []) if f is finish_request]
    return before + after


@pytest.mark.parametrize("blueprint", [True, False], ids=["blueprint", "no-blueprint"])
def test_the_hook_is_registered_once(cart_store, products, blueprint):
    app, _ = build_app(cart_store, products, CART_BLUEPRINT=blueprint)
    assert hooks(app) == [prepare_request, finish_request]
    assert ("flask_cart.view_cart" in app.view_functions) is blueprint


@pytest.mark.parametrize("blueprint", [True, False], ids=["blueprint", "no-blueprint"])
def test_lazy_a_page_that_never_touches_the_cart_costs_nothing(
    cart_store, products, round_trips, blueprint
):
    app, _ = build_app(cart_store, products, CART_BLUEPRINT=blueprint)
    client = app.test_client()
    if blueprint:
        add(client, "sku-1", 2)  # a shopper with a guest cookie and a snapshot
        assert client.get_cookie("guest_cart_id") and client.get_cookie("cart_sync")
    else:
        client.set_cookie(
            "guest_cart_id", Signer(SECRET, salt=GUEST_SALT).sign(str(uuid.uuid4())).decode()
        )
    count, response = trips(round_trips, client)
    assert count == 0
    assert response.headers.getlist("Set-Cookie") == []


def test_eager_restores_before_the_view(cart_store, products, round_trips):
    eager, _ = build_app(cart_store, products, CART_RESTORE="eager")
    seen: dict[str, Any] = {}

    @eager.get("/peek")
    def peek() -> str:
        from flask_cart.context import request_carts

        cart = request_carts().carts.get("cart")
        seen["restored"] = cart is not None and cart._state is not None
        return "ok"

    client = eager.test_client()
    assert trips(round_trips, client, "/peek")[0] == 0  # a new guest: nothing to read
    assert seen["restored"] is True


def test_eager_round_trips_follow_the_sync_window(cart_store, products, round_trips):
    app, carts = build_app(cart_store, products, CART_RESTORE="eager")
    client = app.test_client()
    add(client, "sku-1", 2)
    assert trips(round_trips, client)[0] == 0  # inside the window: the snapshot
    now = carts.clock()
    carts.clock = lambda: now + 31
    assert trips(round_trips, client)[0] == 1  # after it: one store read
    assert trips(round_trips, client)[0] == 0  # a new window


def dead_store(kind: str, tmp_path: Any) -> CartStore:
    if kind == "redis":
        return RedisStore.from_url("redis://127.0.0.1:1/0", timeout=1)
    if kind == "sqlite":
        missing = tmp_path / "no-such-folder" / "carts.sqlite3"
        return SQLStore(SQLStore.create_engine(f"sqlite:///{missing}", timeout=1), timeout=1)
    return SQLStore(SQLStore.create_engine(DEAD_URLS[kind], timeout=1), timeout=1)


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_a_dead_store(store_kind, products, tmp_path, mode):
    """A dead store stops no page, eager or lazy (the cart is `unavailable`); the cart
    route answers 503."""
    app, _ = build_app(
        dead_store(store_kind, tmp_path),
        products,
        CART_RESTORE=mode,
        CART_HANDLE_STORE_ERRORS=True,
    )
    ran: list[str] = []

    @app.get("/work")
    def work() -> str:
        ran.append("view")
        return "done"

    client = app.test_client()
    client.set_cookie(
        "guest_cart_id", Signer(SECRET, salt=GUEST_SALT).sign(str(uuid.uuid4())).decode()
    )
    response = client.get("/work")
    assert response.status_code == 200
    assert ran == ["view"]
    assert client.get("/cart").status_code == 503


def test_restore_mode_is_checked(cart_store, products):
    with pytest.raises(ValueError, match="CART_RESTORE"):
        build_app(cart_store, products, CART_RESTORE="sometimes")


def test_a_request_without_the_hook_still_finds_its_cart(cart_store, products):
    app, carts = build_app(cart_store, products)
    assert isinstance(carts, CartManager)
    with app.test_request_context("/"):
        from flask_cart import current_cart

        assert current_cart.count() == 0


def test_a_request_that_used_its_cart_is_freed_without_the_cycle_collector(app):
    """The request's carts hold their request weakly: dropping the environ frees both."""
    import gc
    import weakref

    from werkzeug.test import EnvironBuilder

    seen = []

    @app.get("/touch-cart")
    def touch() -> str:
        from flask import request

        from flask_cart import current_cart

        current_cart.count()
        seen.append(weakref.ref(request._get_current_object()))
        return "ok"

    environ = EnvironBuilder(path="/touch-cart").get_environ()
    gc.disable()
    try:
        response = app.wsgi_app(environ, lambda *args: None)
        b"".join(response)
        del environ, response
        assert seen and seen[0]() is None
    finally:
        gc.enable()
