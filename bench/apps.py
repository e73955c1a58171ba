"""The apps the peer benchmark compares, each serving the same three scenarios.

- ``page``: ``GET /``, a page that never touches the cart;
- ``view``: ``GET /cart``, the cart as JSON;
- ``add``: ``POST /cart/items`` with ``{"product_id": ..., "quantity": 1}``.

Peers a Flask shop would pick instead of flask-cart: flask-shoppingcart 0.4 (the cart in
Flask's cookie session) and Flask-Session 0.8 on Redis (the cart in a server-side session;
its add answers only ``{product: quantity}``). ``fair-peer(redis)`` does the visible work of
flask-cart's routes without flask-cart: Flask-Session on Redis holds the browser's identity
(a cart id), the cart is a Redis hash an add changes with one MULTI (HINCRBY, HSET of the
updated time, EXPIRE, HGETALL), and add and view answer flask-cart's JSON field for field,
re-priced from the loader dict. ``bare`` and ``bare+session`` (a Flask-Login-sized session
cookie) are the floor; ``bare+fc-cookies`` is bare Flask (bench/icount.py sends it
flask-cart's two cookies), the floor of flask-cart's page.

Every app is built under a tag (``bench_<pid>`` by default): Redis keys go to database 12
(``BENCH_REDIS_URL``) under ``<tag>:``, SQL tables are named ``<tag>``, the SQLite file lives
in ``<tmp>/<tag>``; `clean_up` removes all of it and nothing else.

    python bench/apps.py NAME       # serve one with Flask's server, for a look
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request, session
from leftovers import delete_prefix, drop_tables

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
)
PRODUCTS: dict[str, dict[str, Any]] = {
    f"p{i}": {"unit_cost": Decimal("9.99"), "name": f"Product {i}", "stock": 10**5}
    for i in range(20)
}
NAMES = (
    "bare",
    "bare+session",
    "bare+fc-cookies",
    "flask-shoppingcart",
    "flask-session(redis)",
    "fair-peer(redis)",
    "flask-cart(redis)",
    "flask-cart(sqlite)",
    "flask-cart(postgres)",
    "flask-cart(mariadb)",
)
#: Apps that serve only the page.
PAGE_ONLY = ("bare", "bare+session", "bare+fc-cookies")
#: flask-cart's settings when instructions are counted: under callgrind a run lasts minutes,
#: so the default 30 s sync window would expire mid-run (a view then reads the store) and
#: the default 2 s store timeout would cut store calls short (the run then counts retries).
COUNT_CONFIG = {"CART_SYNC_SECONDS": 3600, "CART_STORE_TIMEOUT": 120}
#: Seconds an idle fair-peer cart lives.
CART_TTL = 604800


def default_tag() -> str:
    """This process's own name for what it writes."""
    return f"bench_{os.getpid()}"


def _page_app(name: str, tag: str) -> Flask:
    app = Flask(name)
    app.secret_key = "bench-secret"
    app.config["BENCH_TAG"] = tag

    @app.get("/")
    def page() -> str:
        return "ok"

    return app


def bare(tag: str) -> Flask:
    return _page_app("bare", tag)


def bare_session(tag: str) -> Flask:
    """Bare Flask whose browser holds a Flask-Login-sized session cookie."""
    app = _page_app("bare_session", tag)

    @app.post("/cart/items")
    def log_in() -> str:
        session.update(_user_id="12345", _fresh=True, _id="f" * 128)
        return "ok"

    return app


def shoppingcart(tag: str) -> Flask:
    from flask_shoppingcart import FlaskShoppingCart

    app = _page_app("shoppingcart", tag)
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


def _redis_session_app(name: str, tag: str) -> tuple[Flask, Any]:
    """A page app whose session lives in Redis (Flask-Session) under ``<tag>:session:``."""
    import redis
    from flask_session import Session

    app = _page_app(name, tag)
    client = redis.Redis.from_url(REDIS_URL)
    app.config.update(
        SESSION_TYPE="redis", SESSION_REDIS=client, SESSION_KEY_PREFIX=f"{tag}:session:"
    )
    Session(app)
    return app, client


def flask_session(tag: str) -> Flask:
    app, _ = _redis_session_app("flask_session", tag)

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


#: json.dumps(..., separators=(",", ":"), sort_keys=True), its encoder built once.
_token_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def cart_answer(lines: dict[str, int], updated_ms: int | None) -> dict[str, Any]:
    """flask-cart's answer for the same cart: every line re-priced from the loader dict, line
    totals, count, units, total, currency, updated_at and a review token over
    [product, quantity, price, available]."""
    items, parts = [], []
    total = Decimal(0)
    units = 0
    for product_id, quantity in lines.items():
        product = PRODUCTS.get(product_id)
        available = product is not None
        price = product["unit_cost"] if product is not None else Decimal(0)
        unit_cost = format(price, "f")
        line_total = price * quantity
        if available:
            total += line_total
        units += quantity
        items.append(
            {
                "product_id": product_id,
                "name": product["name"] if product is not None else None,
                "quantity": quantity,
                "unit_cost": unit_cost,
                "line_total": format(line_total, "f"),
                "price_changed": False,
                "available": available,
                "unavailable_reason": None if available else "unknown_product",
            }
        )
        parts.append([product_id, quantity, unit_cost, available])
    updated = None
    if updated_ms:
        stamp = datetime.fromtimestamp(updated_ms / 1000, timezone.utc)
        updated = stamp.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    return {
        "instance": "cart",
        "items": items,
        "count": len(lines),
        "quantity": units,
        "total_cost": format(total, "f"),
        "updated_at": updated,
        "token": hashlib.sha256(_token_json(parts).encode()).hexdigest()[:32],
        "currency": "USD",
    }


def fair_peer(tag: str) -> Flask:
    """Flask-Session (Redis) for the identity; the cart a Redis hash changed by one MULTI in
    one round trip; the answer flask-cart's JSON (`cart_answer`)."""
    app, client = _redis_session_app("fair_peer", tag)
    prefix = f"{tag}:cart:"

    def decode(raw: dict[bytes, bytes]) -> tuple[dict[str, int], int | None]:
        updated = raw.pop(b"_u", None)
        lines = {k.decode(): int(v) for k, v in raw.items()}
        return lines, None if updated is None else int(updated)

    @app.get("/cart")
    def view() -> Any:
        cart_id = session.get("cart_id")
        raw = client.hgetall(prefix + cart_id) if cart_id else {}
        return jsonify(cart_answer(*decode(raw)))

    @app.post("/cart/items")
    def add() -> Any:
        body = request.get_json()
        if not isinstance(body, dict):
            return jsonify({"error": {"code": "malformed_body"}}), 400
        product_id = body.get("product_id")
        quantity = body.get("quantity", 1)
        if not isinstance(product_id, str) or type(quantity) is not int:
            return jsonify({"error": {"code": "invalid_input"}}), 400
        if not 1 <= quantity <= 999:
            return jsonify({"error": {"code": "invalid_input"}}), 400
        if PRODUCTS.get(product_id) is None:
            return jsonify({"error": {"code": "unknown_product"}}), 404
        cart_id = session.get("cart_id")
        if cart_id is None:
            cart_id = session["cart_id"] = uuid.uuid4().hex
        key = prefix + cart_id
        pipe = client.pipeline(transaction=True)
        pipe.hincrby(key, product_id, quantity)
        pipe.hset(key, "_u", int(time.time() * 1000))
        pipe.expire(key, CART_TTL)
        pipe.hgetall(key)
        return jsonify(cart_answer(*decode(pipe.execute()[-1])))

    return app


def instance_folder(tag: str) -> Path:
    """The instance folder (the SQLite file) of the apps built under `tag`: one per tag, so
    that every server process of one app shares it."""
    return Path(tempfile.gettempdir()) / tag


def flask_cart_app(store: str, tag: str, *, counting: bool, create: bool) -> Flask:
    """flask-cart on `store`; `counting`: COUNT_CONFIG; `create`: its tables created now."""
    from flask_cart import CartManager

    app = _page_app(f"flask_cart_{store}", tag)
    app.instance_path = str(instance_folder(tag))
    app.config.update(CART_SYNC_SECONDS=30, CART_TABLE_NAME=tag)
    if counting:
        app.config.update(COUNT_CONFIG)
    if store == "redis":
        app.config.update(CART_STORE="redis", CART_REDIS_URL=REDIS_URL, CART_KEY_PREFIX=f"{tag}:")
    elif store == "postgres":
        app.config.update(CART_DATABASE_URI=POSTGRES_URL)
    elif store == "mariadb":
        app.config.update(CART_DATABASE_URI=MARIADB_URL)
    carts = CartManager(app)
    carts.product_loader(PRODUCTS.get)
    if create and store != "redis":
        with app.app_context():
            carts.create_tables()
    return app


def make_app(
    name: str, tag: str | None = None, *, counting: bool = False, create: bool = True
) -> Flask:
    """The app called `name` (one of NAMES), writing under `tag` (default_tag() when None);
    see flask_cart_app for `counting` and `create`."""
    tag = tag or default_tag()
    if name.startswith("flask-cart("):
        store = name[len("flask-cart(") : -1]
        return flask_cart_app(store, tag, counting=counting, create=create)
    factories = {
        "bare": bare,
        "bare+fc-cookies": bare,
        "bare+session": bare_session,
        "flask-shoppingcart": shoppingcart,
        "flask-session(redis)": flask_session,
        "fair-peer(redis)": fair_peer,
    }
    return factories[name](tag)


def clean_up(app: Flask) -> None:
    """Remove what an app of this module wrote: its Redis keys (under its tag, in the bench's
    database), its SQL tables and its instance folder."""
    import redis

    tag = app.config["BENCH_TAG"]
    carts = app.extensions.get("cart")
    store = carts.get_store(app) if carts is not None else None
    if getattr(store, "table", None) is not None:
        drop_tables(store)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        delete_prefix(client, f"{tag}:")
    finally:
        client.close()
    shutil.rmtree(instance_folder(tag), ignore_errors=True)


if __name__ == "__main__":
    make_app(sys.argv[1]).run(port=int(os.environ.get("PORT", "5050")))
