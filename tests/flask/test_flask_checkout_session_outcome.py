"""`checkout(session=db.session)`: the cart's removal commits or rolls back with the shop's
transaction, and so do the guest cookie and the browser's copy of the cart."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask_login import LoginManager, UserMixin, login_user
from flask_sqlalchemy import SQLAlchemy

from flask_cart import CartManager, current_cart
from tests.conftest import MARIADB_URL, POSTGRES_URL
from tests.flask.shop import PRODUCTS, add

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def shop(url: str, tmp_path: Path) -> tuple[Flask, SQLAlchemy, str]:
    if url == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    name = f"co_sess_{time.time_ns()}"
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY="s",
        SQLALCHEMY_DATABASE_URI=url,
        CART_TABLE_NAME=name,
        CART_STORE_TIMEOUT=30,
        TESTING=True,
    )
    LoginManager(app).user_loader(User)
    db = SQLAlchemy(app)
    carts = CartManager(app, db=db)
    carts.product_loader(lambda pid: copy.deepcopy(PRODUCTS).get(pid))

    @app.post("/login")
    def login() -> str:
        login_user(User("8"))
        return "ok"

    @app.post("/pay")
    def pay() -> Any:
        order = current_cart.checkout(session=db.session)
        if request.args.get("paid") == "1":
            db.session.commit()
        else:
            db.session.rollback()  # the payment failed: no order, the cart stays
        return jsonify(n=len(order["items"]), after=current_cart.quantity())

    @app.get("/n")
    def n() -> Any:
        current_cart.refresh()
        return jsonify(q=current_cart.quantity())

    @app.get("/copy")
    def copy_view() -> Any:  # inside the sync window: the browser's copy, if any
        return jsonify(q=current_cart.quantity())

    with app.app_context():
        db.create_all()
    return app, db, name


def rows(app: Flask, db: SQLAlchemy, name: str) -> int:
    with app.app_context(), db.engine.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from {name}")).scalar_one())


@pytest.mark.parametrize(
    "url", ["sqlite", POSTGRES_URL, MARIADB_URL], ids=["sqlite", "postgres", "mariadb"]
)
@pytest.mark.parametrize("who", ["guest", "customer"])
def test_a_rolled_back_checkout_leaves_the_cart_with_its_shopper(
    url: str, who: str, tmp_path: Path
) -> None:
    app, db, name = shop(url, tmp_path)
    try:
        c = app.test_client()
        if who == "customer":
            c.post("/login")
        assert add(c, "sku-1", 2).status_code == 200
        guest_cookie = c.get_cookie("guest_cart_id")
        r = c.post("/pay")
        assert r.status_code == 200, r.data
        assert r.json == {"n": 1, "after": 2}  # the request's cart is the store's again
        assert rows(app, db, name) == 1
        if who == "guest":
            assert guest_cookie is not None
            assert c.get_cookie("guest_cart_id").value == guest_cookie.value
        assert c.get("/copy").json == {"q": 2}
        assert c.get("/n").json == {"q": 2}
    finally:
        with app.app_context():
            db.drop_all()


@pytest.mark.parametrize(
    "url", ["sqlite", POSTGRES_URL, MARIADB_URL], ids=["sqlite", "postgres", "mariadb"]
)
@pytest.mark.parametrize("who", ["guest", "customer"])
def test_a_committed_checkout_empties_the_cart_and_its_copy(
    url: str, who: str, tmp_path: Path
) -> None:
    app, db, name = shop(url, tmp_path)
    try:
        c = app.test_client()
        if who == "customer":
            c.post("/login")
        assert add(c, "sku-1", 2).status_code == 200
        r = c.post("/pay?paid=1")
        assert r.json == {"n": 1, "after": 0}
        assert rows(app, db, name) == 0
        if who == "guest":
            assert c.get_cookie("guest_cart_id") is None
        assert c.get("/copy").json == {"q": 0}
        assert c.get("/n").json == {"q": 0}
    finally:
        with app.app_context():
            db.drop_all()
