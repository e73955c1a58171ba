"""The test shop: an app with flask-cart, Flask-Login views, and round-trip counters."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask, g, jsonify, render_template_string, request
from flask_login import LoginManager, UserMixin, login_user, logout_user

from flask_cart import CartManager, current_cart
from flask_cart.stores.base import CartKey, CartStore
from tests.conftest import REDIS_URL

# The Flask tests keep their Redis keys (under per-test prefixes) in a database of their own,
# so that cleaning up (SCAN) does not walk whatever else the shared database holds.
FLASK_REDIS_URL = os.environ.get("CART_TEST_FLASK_REDIS_URL", REDIS_URL.rsplit("/", 1)[0] + "/7")

SECRET = "test-secret-key"

PRODUCTS: dict[str, dict[str, Any]] = {
    "sku-1": {"unit_cost": Decimal("9.99"), "name": "Mug", "stock": 50},
    "sku-2": {"unit_cost": Decimal("4.50"), "name": "Spoon"},
    "sku-3": {"unit_cost": "12", "name": "Plate", "stock": 500},
    "limited": {"unit_cost": Decimal("100.00"), "name": "Rare", "stock": 3},
    "sold-out": {"unit_cost": Decimal("1.00"), "name": "Gone", "stock": 0},
    "free": {"unit_cost": 0, "name": "Sticker"},
}


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


class Counter:
    """Round trips to a store's server: Redis requests sent, or SQL transactions begun."""

    def __init__(self) -> None:
        self.value = 0
        self.statements = 0

    def reset(self) -> None:
        self.value = 0
        self.statements = 0


def counting_redis(counter: Counter) -> redis.Redis:
    """A client whose every request to the server (command, script or pipeline) is counted."""

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counter.value += 1
            super().send_packed_command(command, check_health)

    pool = redis.ConnectionPool.from_url(
        FLASK_REDIS_URL, connection_class=CountingConnection, socket_timeout=5
    )
    return redis.Redis(connection_pool=pool)


def count_sql(engine: sa.Engine, counter: Counter) -> Callable[[], None]:
    """Count transactions begun (and statements run) on `engine`; returns the remover."""

    def on_begin(conn: Any) -> None:
        counter.value += 1

    def on_execute(*args: Any) -> None:
        counter.statements += 1

    sa.event.listen(engine, "begin", on_begin)
    sa.event.listen(engine, "before_cursor_execute", on_execute)

    def remove() -> None:
        sa.event.remove(engine, "begin", on_begin)
        sa.event.remove(engine, "before_cursor_execute", on_execute)

    return remove


def build_app(
    store: CartStore | str, products: dict[str, dict[str, Any]], **config: Any
) -> tuple[Flask, CartManager]:
    """A shop: the cart routes, a bare page, login/logout/register/checkout views."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, TESTING=True, CART_STORE=store, **config)
    login = LoginManager(app)

    @login.user_loader
    def load_user(user_id: str) -> User:
        return User(user_id)

    @app.before_request
    def fresh_globals() -> None:
        # pytest-flask keeps one app context for the whole test, so `g` (where Flask-Login
        # caches the user) would outlive a request; a real server starts each one afresh.
        for name in list(g):
            g.pop(name)

    carts = CartManager(app)

    @carts.product_loader
    def load_product(product_id: str) -> Any:
        value = products.get(product_id)
        if isinstance(value, Exception):  # a test's way of saying "the loader raises"
            raise value
        return value

    @app.get("/")
    def bare() -> str:
        return "a page that never looks at the cart"

    @app.get("/badge")
    def badge() -> str:
        return render_template_string("{{ current_cart.quantity() }} in {{ current_cart }}")

    @app.post("/login/<user_id>")
    def login_view(user_id: str) -> Any:
        login_user(User(user_id), remember=request.args.get("remember") == "1")
        return jsonify(ok=True, quantity=current_cart.quantity())

    @app.post("/logout")
    def logout_view() -> Any:
        logout_user()
        return jsonify(ok=True)

    @app.post("/register/<user_id>")
    def register_view(user_id: str) -> Any:
        user = User(user_id)
        carts.link_guest_cart(user)
        login_user(user)
        return jsonify(ok=True)

    @app.post("/checkout")
    def checkout_view() -> Any:
        order = current_cart.checkout()
        return jsonify(
            items={pid: d["quantity"] for pid, d in order["items"].items()},
            total_cost=str(order["total_cost"]),
        )

    return app, carts


def guest_id_of(client: Any, name: str = "guest_cart_id") -> str | None:
    cookie = client.get_cookie(name)
    return None if cookie is None else cookie.value.split(".", 1)[0]


def stored(store: CartStore, identifier: str, instance: str = "cart") -> dict[str, int]:
    """Product -> quantity as stored now."""
    return {pid: ln.quantity for pid, ln in store.load(CartKey(identifier, instance)).lines.items()}


def add(client: Any, product_id: str, quantity: int = 1, **kwargs: Any) -> Any:
    body = {"product_id": product_id, "quantity": quantity}
    return client.post("/cart/items", json=body, **kwargs)
