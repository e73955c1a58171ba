"""A checkout hands over only what it charges, and bad catalogue text never answers 500.

On every store: a line the catalogue cannot sell now (withdrawn, or a loader that fails)
makes `checkout()` raise LinesUnavailable (409) with nothing removed, with or without the
reviewed token; `remove_unavailable()` drops such lines; a snapshot holds only priced lines
and its total is the sum of their `line_total`s. `checkout(session=...)` on a store that
cannot join that session raises a TypeError naming `carts.uses_app_db()` before any store
round trip. A loader name holding a lone surrogate never breaks a route, a cookie or a link.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from flask import request as http_request
from sqlalchemy.orm import Session

from flask_cart import CartChanged, LinesUnavailable, current_cart, signals
from flask_cart.lines import Limits, Line, Owner
from flask_cart.stores.base import CartKey
from tests.flask.shop import add, stored
from tests.flask.test_flask_links import NAVIGATE, received

CUSTOMER = CartKey("customer:42")


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"CART_STORE_TIMEOUT": 30}


@pytest.fixture
def shop_views(app: Flask) -> Flask:
    """A review page (the store's cart and its token), an order view with or without the
    token, and a view that drops the lines that cannot be sold."""

    @app.get("/review")
    def review_view() -> Any:
        current_cart.refresh()
        return jsonify(token=current_cart.token)

    @app.post("/order")
    def order_view() -> Any:
        body = http_request.get_json(silent=True) or {}
        try:
            order = current_cart.checkout(expect=body.get("token"))
        except LinesUnavailable as exc:
            return jsonify(code=exc.code, status=exc.status, **exc.details), 409
        except CartChanged as exc:
            return jsonify(code=exc.code), 409
        items = order["items"]
        assert all(isinstance(d["line_total"], Decimal) for d in items.values())
        assert order["total_cost"] == sum(d["line_total"] for d in items.values())
        return jsonify(
            items={pid: [d["quantity"], str(d["line_total"])] for pid, d in items.items()},
            count=order["count"],
            quantity=order["quantity"],
            total=str(order["total_cost"]),
        )

    @app.post("/drop-unavailable")
    def drop_view() -> Any:
        return jsonify(removed=current_cart.remove_unavailable())

    return app


def logged_in(app: Flask) -> Any:
    client = app.test_client()
    assert client.post("/login/42").status_code == 200
    return client


# -- item 1: no free goods at checkout ---------------------------------------------------------


def test_checkout_refuses_a_line_withdrawn_from_the_catalogue_and_removes_nothing(
    shop_views, cart_store, products
):
    client = logged_in(shop_views)
    add(client, "sku-1", 2)
    add(client, "sku-2", 1)
    del products["sku-2"]  # withdrawn: the line shows available: false
    response = client.post("/order", json={})
    assert response.status_code == 409, response.json
    assert response.json == {"code": "lines_unavailable", "status": 409, "product_ids": ["sku-2"]}
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 2, "sku-2": 1}


def test_checkout_with_the_reviewed_token_refuses_an_unavailable_line(
    shop_views, cart_store, products
):
    client = logged_in(shop_views)
    add(client, "sku-1", 2)
    add(client, "sku-2", 1)
    del products["sku-2"]
    token = client.get("/review").json["token"]  # the review shows the line unavailable
    response = client.post("/order", json={"token": token})
    assert response.status_code == 409, response.json
    assert response.json["code"] == "lines_unavailable"
    assert response.json["product_ids"] == ["sku-2"]
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 2, "sku-2": 1}


def test_a_loader_that_fails_makes_its_line_unavailable_at_checkout(
    shop_views, cart_store, products
):
    client = logged_in(shop_views)
    add(client, "sku-1", 1)
    add(client, "sku-3", 1)
    products["sku-3"] = RuntimeError("catalogue down")
    response = client.post("/order", json={})
    assert response.status_code == 409
    assert response.json["product_ids"] == ["sku-3"]
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 1, "sku-3": 1}


def test_a_changed_cart_answers_cart_changed_before_lines_unavailable(
    shop_views, cart_store, products
):
    client = logged_in(shop_views)
    add(client, "sku-1", 1)
    add(client, "sku-2", 1)
    token = client.get("/review").json["token"]
    add(client, "sku-1", 1)  # the cart changed since the review ...
    del products["sku-2"]  # ... and a line is gone as well
    response = client.post("/order", json={"token": token})
    assert response.status_code == 409
    assert response.json["code"] == "cart_changed"
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 2, "sku-2": 1}


def test_remove_unavailable_drops_those_lines_with_a_signal_each_then_checkout_succeeds(
    shop_views, cart_store, products
):
    client = logged_in(shop_views)
    for product_id in ("sku-1", "sku-2", "sku-3"):
        add(client, product_id, 2)
    del products["sku-2"]
    products["sku-3"] = RuntimeError("catalogue down")
    with received(shop_views, signals.cart_item_removed) as removed_signals:
        response = client.post("/drop-unavailable")
    assert sorted(response.json["removed"]) == ["sku-2", "sku-3"]
    assert sorted(call["product_id"] for call in removed_signals) == ["sku-2", "sku-3"]
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 2}
    assert client.post("/drop-unavailable").json["removed"] == []  # nothing left to drop
    order = client.post("/order", json={"token": client.get("/review").json["token"]})
    assert order.status_code == 200, order.json
    assert order.json == {
        "items": {"sku-1": [2, "19.98"]},
        "count": 1,
        "quantity": 2,
        "total": "19.98",
    }
    assert not cart_store.load(CUSTOMER).exists


def test_the_snapshot_total_is_the_sum_of_its_line_totals(shop_views, products):
    client = logged_in(shop_views)
    products["tenth"] = {"unit_cost": Decimal("0.105"), "name": "Screw"}
    add(client, "tenth", 3)  # 0.315 -> 0.32
    add(client, "sku-3", 1)  # "12" -> 12.00
    response = client.post("/order", json={})
    assert response.status_code == 200, response.json
    assert response.json["items"] == {"tenth": [3, "0.32"], "sku-3": [1, "12.00"]}
    assert response.json["total"] == "12.32"


def test_checkout_without_a_token_checks_again_when_the_cart_moves_before_the_take(
    shop_views, cart_store, products
):
    """Another device adds a withdrawn product between the check and the removal: the
    checkout does not take the cart it did not check; it checks again and refuses."""
    client = logged_in(shop_views)
    add(client, "sku-1", 1)
    real = products["sku-1"]

    class Sneaky(dict):
        fired = False

        def get(self, key: str, default: Any = None) -> Any:
            # Runs while the checkout re-prices the cart it read: another device adds a
            # line for a product the catalogue no longer sells.
            if not Sneaky.fired:
                Sneaky.fired = True
                cart_store.add(
                    CUSTOMER,
                    Line("gone", 1, "5.00", {}),
                    owner=Owner("42", 3600),
                    limits=Limits(),
                )
            return real.get(key, default)

    products["sku-1"] = Sneaky(real)
    response = client.post("/order", json={})
    assert response.status_code == 409, response.json
    assert response.json["product_ids"] == ["gone"]
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 1, "gone": 1}


# -- item 6: checkout(session=...) on a store that cannot join it --------------------------------


def session_view(app: Flask, session_bind: sa.Engine) -> None:
    @app.post("/order-in-session")
    def order_in_session() -> Any:
        with Session(session_bind) as session:
            try:
                current_cart.checkout(session=session)
            except TypeError as exc:
                return jsonify(error=str(exc)), 500
        return jsonify(ok=True)


@pytest.mark.parametrize("store_kind", [pytest.param("redis", marks=pytest.mark.redis)])
def test_checkout_with_a_session_on_redis_names_uses_app_db_before_any_round_trip(
    app, cart_store, round_trips
):
    session_view(app, sa.create_engine("sqlite://"))
    client = logged_in(app)
    add(client, "sku-1", 2)
    round_trips.reset()
    response = client.post("/order-in-session")
    message = response.json["error"]
    assert "checkout(session=...)" in message and "carts.uses_app_db()" in message
    assert "take(" not in message
    assert round_trips.value == 0  # nothing read, nothing removed
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 2}


@pytest.mark.parametrize(
    "store_kind",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_checkout_with_a_session_on_another_engine_names_uses_app_db_and_removes_nothing(
    app, cart_store, round_trips, tmp_path
):
    """A SQL store on an engine of its own cannot join the app's session either."""
    session_view(app, sa.create_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}"))
    client = logged_in(app)
    add(client, "sku-1", 2)
    round_trips.reset()
    response = client.post("/order-in-session")
    message = response.json["error"]
    assert "checkout(session=...)" in message and "carts.uses_app_db()" in message
    assert round_trips.value == 0
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 2}


def test_a_guest_without_a_cart_gets_the_session_error_too(app, cart_store):
    session_view(app, sa.create_engine("sqlite://"))
    response = app.test_client().post("/order-in-session")
    assert "carts.uses_app_db()" in response.json["error"]


# -- item 10: text the catalogue cannot encode -------------------------------------------------

SURROGATE_NAME = "Mug \ud800 deluxe"


@pytest.fixture
def bad_text(products: dict[str, dict[str, Any]]) -> None:
    products["sku-1"]["name"] = SURROGATE_NAME
    products["sku-1"]["image_url"] = "/img/\udcff.png"


@pytest.mark.parametrize(
    "app_config", [{"CART_STORE_TIMEOUT": 30, "CART_LINE_FIELDS": ("image_url",)}]
)
def test_a_lone_surrogate_in_a_name_never_answers_500_on_add_view_or_link(
    bad_text, app, client, cart_store
):
    response = add(client, "sku-1", 1)
    assert response.status_code == 200, response.data
    item = response.json["items"][0]
    assert item["name"] == "Mug ? deluxe"
    assert item["image_url"] == "/img/?.png"
    for _ in range(2):  # the second read is served from the sync cookie the first one set
        response = client.get("/cart")
        assert response.status_code == 200, response.data
        assert response.json["items"][0]["name"] == "Mug ? deluxe"
    link = client.get("/cart/add/sku-1?qty=2", headers={**NAVIGATE, "Sec-Fetch-User": "?1"})
    assert link.status_code == 303, link.data
    assert client.get("/cart").json["items"][0]["quantity"] == 3
    assert client.post("/login/42").status_code == 200  # merged into the customer's cart
    body = client.get("/cart").json
    assert body["items"][0]["name"] == "Mug ? deluxe" and body["items"][0]["quantity"] == 3
    assert stored(cart_store, CUSTOMER.identifier) == {"sku-1": 3}


def test_a_stored_detail_with_a_lone_surrogate_is_stored_as_valid_text(app, client, cart_store):
    """A line added through the Python API with such a detail, then withdrawn from the
    catalogue (its stored name is shown): every route still answers."""

    @app.post("/add-raw")
    def add_raw() -> Any:
        current_cart.add("raw", Decimal("1.50"), 2, name="Raw \ud800", note="\udfff")
        return jsonify(current_cart.as_json())

    response = client.post("/add-raw")
    assert response.status_code == 200, response.data
    assert response.json["items"][0]["name"] == "Raw ?"
    assert client.get("/cart").status_code == 200
    assert client.get("/cart").json["items"][0]["available"] is False  # unknown to the loader


def test_checkout_while_the_store_is_down_raises_store_unavailable_not_cart_changed(products):
    """Reads fall back to the browser's copy while the store is down; a checkout never
    checks that copy: it raises StoreUnavailable (a stale token is not CartChanged)."""
    from flask_cart import StoreUnavailable
    from flask_cart.stores.redis import RedisStore
    from tests.flask.shop import build_app

    dead = RedisStore.from_url("redis://127.0.0.1:1/0", timeout=0.5, prefix="never:")
    app, _ = build_app(dead, products)

    @app.post("/order")
    def order_view() -> Any:
        current_cart.checkout(expect="a-token-from-a-stale-review")
        return "ordered"

    client = app.test_client()
    client.post("/login/42")
    with pytest.raises(StoreUnavailable):
        client.post("/order")
