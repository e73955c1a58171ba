"""A cart the stock no longer covers is refused at checkout, with or without the token the
customer reviewed: CartChanged with the fresh cart, nothing removed."""

from __future__ import annotations

from typing import Any

import pytest
from flask import jsonify

from flask_cart import CartChanged, LinesUnavailable, current_cart
from tests.flask.shop import add, stored


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"CART_STORE_TIMEOUT": 30}


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no_token"])
def test_a_line_sold_out_since_it_was_added_is_refused_at_checkout(
    app: Any, client: Any, products: Any, cart_store: Any, with_token: bool
) -> None:
    @app.post("/order")
    def order() -> Any:
        current_cart.refresh()
        token = current_cart.token if with_token else None
        try:
            o = current_cart.checkout(expect=token)
        except (LinesUnavailable, CartChanged) as exc:
            return jsonify(code=exc.code, details=exc.details), 409
        return jsonify(items={k: v["quantity"] for k, v in o["items"].items()})

    assert client.post("/login/42").status_code == 200
    assert add(client, "limited", 3).status_code == 200
    products["limited"]["stock"] = 1
    r = client.post("/order")
    assert r.status_code == 409, r.json
    assert r.json["code"] == "cart_changed"
    assert [i["quantity"] for i in r.json["details"]["items"]] == [3]
    assert stored(cart_store, "customer:42") == {"limited": 3}
    products["limited"]["stock"] = 3  # covered again: taken
    r = client.post("/order")
    assert r.status_code == 200, r.json
    assert r.json == {"items": {"limited": 3}}
