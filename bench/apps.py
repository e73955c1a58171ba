"""The apps the peer benchmark compares, each serving the same three scenarios.

- ``page``: ``GET /``, a page that never touches the cart;
- ``view``: ``GET /cart``, the cart as JSON;
- ``add``: ``POST /cart/items`` with ``{"product_id": ..., "quantity": 1}``.

Peers a Flask shop would pick instead of flask-cart: flask-shoppingcart 0.4 (the cart in
Flask's cookie session) and Flask-Session 0.8 on Redis (the cart in a server-side session).
``bare`` and ``bare+session`` (a Flask-Login-sized session cookie) are the floor. flask-cart
runs on each of its stores, with its sync window at 30 s. Redis keys go to database 12
(``BENCH_REDIS_URL``) under the prefix ``bench_<n>:``, SQL tables are named ``bench_<n>``
(``BENCH_TABLE`` sets it, so that several server processes share one); nothing else is
touched, and `drop_tables` removes them.

    python bench/apps.py NAME       # serve one with Flask's server, for a look
"""

from __future__ import annotations

import os
import sys
import tempfile
from decimal import Decimal
from typing import Any

from flask import Flask, jsonify, request, session

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
)
PRODUCTS = {
    f"p{i}": {"unit_cost": Decimal("9.99"), "name": f"Product {i}", "stock": 10**5}
    for i in range(20)
}
NAMES = (
    "bare",
    "bare+session",
    "flask-shoppingcart",
    "flask-session(redis)",
    "flask-cart(redis)",
    "flask-cart(sqlite)",
    "flask-cart(postgres)",
    "flask-cart(mariadb)",
)


def _page_app(name: str) -> Flask:
    app = Flask(name)
    app.secret_key = "bench-secret"

    @app.get("/")
    def page() -> str:
        return "ok"

    return app


def bare() -> Flask:
    return _page_app("bare")


def bare_session() -> Flask:
    """Bare Flask whose browser holds a Flask-Login-sized session cookie."""
    app = _page_app("bare_session")

    @app.post("/cart/items")
    def log_in() -> str:
        session.update(_user_id="12345", _fresh=True, _id="f" * 128)
        return "ok"

    return app


def shoppingcart() -> Flask:
    from flask_shoppingcart import FlaskShoppingCart

    app = _page_app("shoppingcart")
    cart = FlaskShoppingCart(app)

    @app.get("/cart")
    def view() -> Any:
        return jsonify(cart.get_cart())

    @app.post("/cart/items")
    def add() -> Any:
        body = request.get_json()
        cart.add(body["product_id"], int(body.get("quantity", 1)))
        return jsonify(cart.get_cart())

    return app


def flask_session() -> Flask:
    import redis
    from flask_session import Session

    app = _page_app("flask_session")
    app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(REDIS_URL))
    Session(app)

    @app.get("/cart")
    def view() -> Any:
        return jsonify(session.get("cart", {}))

    @app.post("/cart/items")
    def add() -> Any:
        body = request.get_json()
        cart = session.setdefault("cart", {})
        product_id = body["product_id"]
        cart[product_id] = cart.get(product_id, 0) + int(body.get("quantity", 1))
        session.modified = True
        return jsonify(cart)

    return app


def flask_cart_app(store: str) -> Flask:
    from flask_cart import CartManager

    app = _page_app(f"flask_cart_{store}")
    app.instance_path = tempfile.mkdtemp(prefix="bench-")
    table = os.environ.get("BENCH_TABLE", f"bench_{os.getpid()}")
    app.config.update(CART_SYNC_SECONDS=30, CART_TABLE_NAME=table)
    if store == "redis":
        app.config.update(CART_STORE="redis", CART_REDIS_URL=REDIS_URL, CART_KEY_PREFIX=f"{table}:")
    elif store == "postgres":
        app.config.update(CART_DATABASE_URI=POSTGRES_URL)
    elif store == "mariadb":
        app.config.update(CART_DATABASE_URI=MARIADB_URL)
    carts = CartManager(app)
    carts.product_loader(PRODUCTS.get)
    with app.app_context():
        carts.create_tables()
    return app


def make_app(name: str) -> Flask:
    """The app called `name` (one of NAMES)."""
    if name.startswith("flask-cart("):
        return flask_cart_app(name[len("flask-cart(") : -1])
    factories = {
        "bare": bare,
        "bare+session": bare_session,
        "flask-shoppingcart": shoppingcart,
        "flask-session(redis)": flask_session,
    }
    return factories[name]()


def drop_tables(app: Flask) -> None:
    """Remove what a flask-cart app created for the bench (its table, or its Redis keys)."""
    store = app.extensions["cart"].get_store(app)
    table = getattr(store, "table", None)
    if table is not None:
        table.drop(store.engine, checkfirst=True)
        store.engine.dispose()
        return
    client = store.client
    for key in client.scan_iter(match=f"{store.prefix}*", count=1000):
        client.delete(key)


if __name__ == "__main__":
    make_app(sys.argv[1]).run(port=int(os.environ.get("PORT", "5050")))
