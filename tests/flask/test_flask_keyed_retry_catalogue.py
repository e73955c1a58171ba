"""A keyed change that was applied, resent after the catalogue moved (stock fell, product
withdrawn), answers the cart as it is now: the key records decide, not today's catalogue."""

from __future__ import annotations

from typing import Any

import pytest

from flask_cart import signals
from tests.flask.shop import add, stored


def keyed(key: str) -> dict[str, Any]:
    return {"headers": {"Idempotency-Key": key}}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"CART_STORE_TIMEOUT": 30}


def test_an_applied_add_resent_after_the_stock_ran_out_answers_the_cart(
    app: Any, client: Any, cart_store: Any, products: Any
) -> None:
    assert client.post("/login/42").status_code == 200
    assert add(client, "limited", 2, **keyed("sold")).status_code == 200
    products["limited"]["stock"] = 0
    added: list[Any] = []
    with signals.cart_item_added.connected_to(lambda sender, **kw: added.append(kw), app):
        retry = add(client, "limited", 2, **keyed("sold"))
    assert retry.status_code == 200, retry.json
    assert {i["product_id"]: i["quantity"] for i in retry.json["items"]} == {"limited": 2}
    assert added == []  # a replay sends no signal
    assert stored(cart_store, "customer:42") == {"limited": 2}


def test_an_applied_add_resent_after_the_product_was_withdrawn_answers_the_cart(
    client: Any, cart_store: Any, products: Any
) -> None:
    assert client.post("/login/42").status_code == 200
    assert add(client, "sku-2", 2, **keyed("gone")).status_code == 200
    del products["sku-2"]
    retry = add(client, "sku-2", 2, **keyed("gone"))
    assert retry.status_code == 200, retry.json
    assert stored(cart_store, "customer:42") == {"sku-2": 2}


def test_an_applied_patch_resent_after_the_stock_fell_answers_the_cart(
    client: Any, cart_store: Any, products: Any
) -> None:
    assert client.post("/login/42").status_code == 200
    assert add(client, "limited", 1).status_code == 200
    h = {"Idempotency-Key": "set3"}
    assert client.patch("/cart/items/limited", json={"quantity": 3}, headers=h).status_code == 200
    products["limited"]["stock"] = 2
    retry = client.patch("/cart/items/limited", json={"quantity": 3}, headers=h)
    assert retry.status_code == 200, retry.json
    assert stored(cart_store, "customer:42") == {"limited": 3}


def test_a_guest_add_resent_after_the_stock_ran_out_answers_the_cart(
    client: Any, cart_store: Any, products: Any
) -> None:
    assert add(client, "limited", 2, **keyed("g1")).status_code == 200
    products["limited"]["stock"] = 0
    retry = add(client, "limited", 2, **keyed("g1"))
    assert retry.status_code == 200, retry.json
    assert retry.json["quantity"] == 2


def test_a_key_used_for_another_change_is_still_refused_after_the_stock_ran_out(
    client: Any, cart_store: Any, products: Any
) -> None:
    assert client.post("/login/42").status_code == 200
    assert add(client, "limited", 2, **keyed("k")).status_code == 200
    products["limited"]["stock"] = 0
    other = add(client, "limited", 1, **keyed("k"))
    assert other.status_code == 422, other.json
    assert other.json["error"]["code"] == "idempotency_key_reused"
    assert stored(cart_store, "customer:42") == {"limited": 2}


def test_a_new_key_after_the_stock_ran_out_is_refused_as_before(
    client: Any, cart_store: Any, products: Any
) -> None:
    assert client.post("/login/42").status_code == 200
    assert add(client, "limited", 2, **keyed("first")).status_code == 200
    products["limited"]["stock"] = 0
    r = add(client, "limited", 2, **keyed("second"))
    assert r.status_code == 422
    assert r.json["error"]["code"] == "insufficient_stock"
    del products["sku-2"]
    r = add(client, "sku-2", 1, **keyed("third"))
    assert r.status_code == 404
    assert stored(cart_store, "customer:42") == {"limited": 2}
