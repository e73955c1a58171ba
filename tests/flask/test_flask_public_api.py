"""What a shop's own pages may ask of the request's cart beyond the ecart methods: the age
of the browser's copy, the cart as stored, whether a change came from a form post."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import jsonify

from flask_cart import current_cart, is_form_post, signals
from tests.flask.shop import add


def test_sync_age_is_the_age_of_the_browsers_copy(app, carts, client):
    @app.get("/age")
    def age() -> Any:
        return jsonify(age=current_cart.sync_age)

    now = 1_000_000.0
    carts.clock = lambda: now
    assert client.get("/age").json["age"] is None  # a new guest: no copy
    add(client, "sku-1")
    carts.clock = lambda: now + 12.5
    assert client.get("/age").json["age"] == 12.5
    carts.clock = lambda: now + 40  # past the window: this request reads the store again
    client.get("/cart")
    assert client.get("/age").json["age"] == 0


def test_stored_is_the_cart_at_the_prices_it_was_added_at(app, carts, client, products):
    @app.get("/prices")
    def prices() -> Any:
        stored = current_cart.stored()
        return jsonify(
            now=str(current_cart.get()["sku-1"]["unit_cost"]),
            added=str(stored.lines["sku-1"].unit_cost),
            version=stored.version,
        )

    add(client, "sku-1")
    old = Decimal(str(products["sku-1"]["unit_cost"]))
    products["sku-1"]["unit_cost"] = old + 1
    now = carts.clock()
    carts.clock = lambda: now + 60  # past the sync window: the request reads and re-prices
    answer = client.get("/prices").json
    assert Decimal(answer["added"]) == old
    assert Decimal(answer["now"]) == old + 1
    assert answer["version"] == 1


def test_is_form_post_tells_a_form_change_from_a_json_one(app, client):
    seen: list[bool] = []

    def added(sender: Any, **kwargs: Any) -> None:
        seen.append(is_form_post())

    signals.cart_item_added.connect(added, app)
    try:
        add(client, "sku-1")
        client.post("/cart/items", data={"product_id": "sku-1", "next": "/"})
    finally:
        signals.cart_item_added.disconnect(added, app)
    assert seen == [False, True]
