"""`current_cart.get_ttl()` is a read: with the store down a shop page still renders (0,
the cart `unavailable`); `set_ttl` is a change and raises StoreUnavailable."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import jsonify, render_template_string

from flask_cart import StoreUnavailable, current_cart
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.flask.shop import PRODUCTS, add, build_app

DEAD = [
    "redis://127.0.0.1:1/0",
    "postgresql+psycopg://postgres@127.0.0.1:1/test",
    "mysql+pymysql://root@127.0.0.1:1/test",
]


def dead_store(url: str) -> Any:
    if url.startswith("redis"):
        return RedisStore.from_url(url, timeout=1, prefix="never:")
    return SQLStore(SQLStore.create_engine(url, timeout=1), timeout=1)


@pytest.mark.parametrize("mode", ["lazy", "eager"])
@pytest.mark.parametrize("url", DEAD)
def test_a_page_showing_the_carts_ttl_renders_while_the_store_is_down(url: str, mode: str) -> None:
    app, _ = build_app(
        dead_store(url), copy.deepcopy(PRODUCTS), CART_STORE_TIMEOUT=1, CART_RESTORE=mode
    )

    @app.get("/cart-page")
    def cart_page() -> Any:
        return render_template_string(
            "{{ current_cart.quantity() }} items, kept {{ current_cart.get_ttl() }} s,"
            " {{ current_cart.unavailable }}"
        )

    @app.post("/keep")
    def keep() -> Any:
        try:
            current_cart.set_ttl(60)
        except StoreUnavailable:
            return jsonify(error="unavailable"), 503
        return jsonify(ok=True)

    client = app.test_client()
    assert client.post("/login/5").status_code == 200
    r = client.get("/cart-page")
    assert r.status_code == 200, r.data
    assert r.text == "0 items, kept 0 s, True"
    assert client.post("/keep").status_code == 503


def test_get_ttl_answers_the_stores_ttl_when_it_answers(app: Any, client: Any) -> None:
    @app.get("/ttl")
    def ttl() -> Any:
        return jsonify(ttl=current_cart.get_ttl(), unavailable=current_cart.unavailable)

    assert client.post("/login/5").status_code == 200
    assert client.get("/ttl").json == {"ttl": 0, "unavailable": False}
    assert add(client, "sku-1", 1).status_code == 200
    answer = client.get("/ttl").json
    assert answer["unavailable"] is False
    assert 0 < answer["ttl"] <= 90 * 86400
