"""Checkout charges what the customer reviewed: `token`, `checkout(expect=...)`, `session=`.

On every store: a change from another device, a price change or a stock drop between the
review and the order gives 409 and leaves the cart whole; concurrent checkouts with one
token give one order. On the SQL stores with the app's Flask-SQLAlchemy `db`, the order
rows and the cart's removal commit or roll back together.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from flask import request as http_request
from flask_login import LoginManager, UserMixin, login_user

from flask_cart import CartManager, current_cart
from flask_cart.errors import CartChanged
from flask_cart.stores.base import CartKey
from tests.conftest import MARIADB_URL, POSTGRES_URL, SERVER_ENGINES, test_name
from tests.flask.shop import add, stored
from tests.helpers import raw_dump

CUSTOMER = CartKey("customer:42")


@pytest.fixture
def review(app: Flask) -> Any:
    """The customer's review page: the store's cart (not the sync copy) and its token."""

    @app.get("/review")
    def review_view() -> Any:
        current_cart.refresh()
        return jsonify(token=current_cart.token, quantity=current_cart.quantity())

    @app.post("/order")
    def order_view() -> Any:
        try:
            order = current_cart.checkout(expect=http_request.get_json()["token"])
        except CartChanged as exc:
            return jsonify(changed=exc.details), 409
        return jsonify(quantity=order["quantity"], total=str(order["total_cost"]))

    return app


def logged_in(app: Flask) -> Any:
    client = app.test_client()
    assert client.post("/login/42").status_code == 200
    return client


def test_the_token_names_lines_quantities_and_prices(app, client, products):
    add(client, "sku-1", 2)
    first = client.get("/cart").json["token"]
    assert client.get("/cart").json["token"] == first  # nothing changed
    client.patch("/cart/items/sku-1", json={"quantity": 3})
    assert client.get("/cart").json["token"] != first
    second = client.get("/cart").json["token"]
    client.patch("/cart/items/sku-1", json={"quantity": 2})
    assert client.get("/cart").json["token"] == first  # the same cart again
    assert second != first


def test_an_unchanged_review_is_ordered(review, cart_store):
    client = logged_in(review)
    add(client, "sku-1", 2)
    token = client.get("/review").json["token"]
    response = client.post("/order", json={"token": token})
    assert response.status_code == 200, response.json
    assert response.json == {"quantity": 2, "total": "19.98"}
    assert not cart_store.load(CUSTOMER).exists


def test_a_change_on_another_device_gives_409_and_keeps_the_cart(review, cart_store):
    device_a, device_b = logged_in(review), logged_in(review)
    add(device_a, "sku-1", 1)
    token = device_a.get("/review").json["token"]
    assert device_b.patch("/cart/items/sku-1", json={"quantity": 2}).status_code == 200
    before = raw_dump(cart_store, CUSTOMER)
    response = device_a.post("/order", json={"token": token})
    assert response.status_code == 409
    changed = response.json["changed"]
    assert [(i["product_id"], i["quantity"]) for i in changed["items"]] == [("sku-1", 2)]
    assert changed["total_cost"] == "19.98"
    assert raw_dump(cart_store, CUSTOMER) == before
    # Reviewed again, the new cart is ordered, and it is what was shown.
    token = device_a.get("/review").json["token"]
    assert token == changed["token"]
    assert device_a.post("/order", json={"token": token}).json["quantity"] == 2


def test_a_price_change_gives_409(review, cart_store, products):
    client = logged_in(review)
    add(client, "sku-1", 1)
    token = client.get("/review").json["token"]
    products["sku-1"]["unit_cost"] = Decimal("11.99")
    before = raw_dump(cart_store, CUSTOMER)
    response = client.post("/order", json={"token": token})
    assert response.status_code == 409
    assert response.json["changed"]["items"][0]["unit_cost"] == "11.99"
    assert response.json["changed"]["items"][0]["price_changed"] is True
    assert raw_dump(cart_store, CUSTOMER) == before


def test_a_stock_drop_gives_409(review, cart_store, products):
    client = logged_in(review)
    add(client, "limited", 3)
    token = client.get("/review").json["token"]
    products["limited"]["stock"] = 2
    before = raw_dump(cart_store, CUSTOMER)
    assert client.post("/order", json={"token": token}).status_code == 409
    assert raw_dump(cart_store, CUSTOMER) == before


def test_a_stale_token_of_a_guest_never_issued(review):
    client = review.test_client()
    assert client.post("/order", json={"token": "not-the-empty-cart"}).status_code == 409


def test_concurrent_checkouts_with_one_token_give_one_order(review, cart_store):
    client = logged_in(review)
    for product in ("sku-1", "sku-2", "sku-3"):
        add(client, product, 2)
    token = client.get("/review").json["token"]
    cookie = client.get_cookie("session").value
    results: list[int] = []
    barrier = threading.Barrier(6)

    def order() -> None:
        device = review.test_client()
        device.set_cookie("session", cookie)
        barrier.wait()
        results.append(device.post("/order", json={"token": token}).status_code)

    threads = [threading.Thread(target=order) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One order; the others find the cart gone (an empty cart is not what they reviewed).
    assert sorted(results) == [200] + [409] * 5
    assert stored(cart_store, "customer:42") == {}


# -- the order and the cart in one transaction (Flask-SQLAlchemy) ---------------------------

SQL_URLS = {"sqlite": None, "postgres": POSTGRES_URL, "mariadb": MARIADB_URL}


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


@pytest.fixture(params=list(SQL_URLS))
def db_shop(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A shop on Flask-SQLAlchemy whose carts table and orders table share one database."""
    from flask_sqlalchemy import SQLAlchemy

    kind = request.param
    if kind in SERVER_ENGINES:  # fails early (with how to start it) if the server is down
        request.getfixturevalue(SERVER_ENGINES[kind])
    url = SQL_URLS[kind] or f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    name = test_name()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="s", TESTING=True, SQLALCHEMY_DATABASE_URI=url, CART_TABLE_NAME=name
    )
    db = SQLAlchemy(app)
    orders = sa.Table(
        f"{name}_orders",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("total", sa.String(32), nullable=False),
    )
    LoginManager(app).user_loader(User)
    carts = CartManager(app, db=db)
    carts.product_loader({"mug": {"unit_cost": Decimal("9.99")}}.get)

    @app.post("/login")
    def login() -> str:
        login_user(User("7"))
        return "ok"

    @app.post("/place")
    def place() -> Any:
        token = http_request.get_json()["token"]
        if http_request.args.get("cart_first"):  # the contract's order: the cart, then the order
            order = current_cart.checkout(expect=token, session=db.session)
            db.session.execute(orders.insert().values(total=str(order["total_cost"])))
            db.session.flush()
        else:
            db.session.execute(orders.insert().values(total=str(current_cart.total_cost())))
            db.session.flush()  # the order row holds its write lock from here on
            current_cart.checkout(expect=token, session=db.session)
        if http_request.args.get("fail"):
            db.session.rollback()  # say, the payment was declined
            return jsonify(placed=False), 402
        db.session.commit()
        return jsonify(placed=True)

    with app.app_context():
        db.create_all()
    yield app, db, orders, carts
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def count_orders(app: Flask, db: Any, orders: sa.Table) -> int:
    with app.app_context():
        return int(db.session.execute(sa.select(sa.func.count()).select_from(orders)).scalar())


@pytest.mark.parametrize("cart_first", [False, True], ids=["order-first", "cart-first"])
@pytest.mark.parametrize("fail", [False, True], ids=["commit", "rollback"])
def test_the_order_and_the_cart_commit_or_roll_back_together(db_shop, fail, cart_first):
    """Either order of calls in one transaction; on SQLite the cart's removal first must
    not commit on its own (pysqlite's outermost savepoint release would)."""
    app, db, orders, carts = db_shop
    client = app.test_client()
    client.post("/login")
    client.post("/cart/items", json={"product_id": "mug", "quantity": 2})
    token = client.get("/cart").json["token"]
    query = "&".join(f"{k}=1" for k, on in (("fail", fail), ("cart_first", cart_first)) if on)
    response = client.post(f"/place?{query}", json={"token": token})
    assert response.status_code == (402 if fail else 200), response.data
    assert count_orders(app, db, orders) == (0 if fail else 1)
    with app.app_context():
        left = carts.get_store().load(CartKey("customer:7"))
    assert left.exists is fail
    if fail:
        assert {pid: line.quantity for pid, line in left.lines.items()} == {"mug": 2}


def test_uses_app_db_says_when_checkout_can_join_the_session(db_shop, tmp_path):
    app, _db, _orders, carts = db_shop
    assert carts.uses_app_db(app) is True
    own = Flask(__name__, instance_path=str(tmp_path / "own"))
    own.config["SECRET_KEY"] = "s"
    assert CartManager(own).uses_app_db(own) is False  # the SQLite default of its own
