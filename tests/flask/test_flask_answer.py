"""The cart routes' JSON answer is written in one pass (flask_cart/answer.py): byte for byte
what ``app.json.response(current_cart.as_json())`` gives, whatever the lines hold (prices
that moved or need rounding, lines no longer sold, text that needs escaping), under every
JSON setting of the app, the currency's minor digits, and CART_LINE_FIELDS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from flask_cart import current_cart
from tests.flask.shop import add, build_app

#: No sync window: each request reads the store and re-prices, so the two answers compared
#: describe the catalogue as the test left it.
CONFIG = {"CART_SYNC_SECONDS": 0, "CART_STORE_TIMEOUT": 30}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return dict(CONFIG)


def expected_view(app: Flask) -> None:
    """``GET /expected``: the cart as the app's JSON provider answers ``as_json()``."""

    @app.get("/expected")
    def expected() -> Any:
        return app.json.response(current_cart.as_json())


def answers_match(client: Any) -> bytes:
    """The cart route's body, checked equal to the provider's answer (same sync window)."""
    got = client.get("/cart")
    want = client.get("/expected")
    assert got.status_code == 200 and want.status_code == 200
    assert got.mimetype == want.mimetype == "application/json"
    assert got.data == want.data
    return got.data


def fill(client: Any, products: dict[str, dict[str, Any]]) -> None:
    """A cart with every kind of line: plain, rounded, re-priced, unsold, failing, escaped."""
    products["quoted"] = {"unit_cost": Decimal("1.25"), "name": 'Say "hi" \\ <b>\u2028'}
    products["cafe"] = {"unit_cost": "3.5", "name": "Caf\u00e9 \u2615"}
    products["screw"] = {"unit_cost": Decimal("0.105"), "name": "Screw"}
    products["gone"] = {"unit_cost": Decimal("2.00"), "name": "Gone soon"}
    products["broken"] = {"unit_cost": Decimal("5.00"), "name": "Broken soon"}
    for product_id, quantity in [
        ("sku-1", 2),
        ("quoted", 1),
        ("cafe", 3),
        ("screw", 3),
        ("gone", 1),
        ("broken", 1),
        ("free", 4),
    ]:
        add(client, product_id, quantity)
    products["sku-1"]["unit_cost"] = Decimal("10.49")  # price_changed
    del products["gone"]  # unknown_product
    products["broken"]["unit_cost"] = float("nan")  # bad_product_data


def test_every_kind_of_line_answers_as_the_provider_would(app, client, products):
    expected_view(app)
    assert answers_match(client).startswith(b'{"count":0,')  # an empty cart
    fill(client, products)
    body = answers_match(client)
    assert b"\\u00e9" in body and b'\\"hi\\"' in body  # escaped as Flask escapes
    data = client.get("/cart").json
    reasons = {item["product_id"]: item["unavailable_reason"] for item in data["items"]}
    assert reasons["gone"] == "unknown_product" and reasons["broken"] == "bad_product_data"
    assert {i["product_id"] for i in data["items"] if i["price_changed"]} == {"sku-1"}


@pytest.mark.parametrize(
    "settings",
    [
        {"ensure_ascii": False},
        {"sort_keys": False},
        {"compact": False},
        {"debug": True},
        {"subclass": True},
    ],
)
def test_the_apps_json_settings_are_followed(app, client, products, settings):
    """Unicode unescaped; unsorted keys, pretty-printing and another provider (the
    provider's own answer)."""
    expected_view(app)
    if settings.get("subclass"):

        class Provider(DefaultJSONProvider):
            def dumps(self, obj: Any, **kwargs: Any) -> str:
                return super().dumps({"wrapped": obj}, **kwargs)

        app.json = Provider(app)
    elif settings.get("debug"):
        app.debug = True
    else:
        for name, value in settings.items():
            setattr(app.json, name, value)
    fill(client, products)
    body = answers_match(client)
    if settings.get("ensure_ascii") is False:
        assert "Caf\u00e9".encode() in body
    if settings.get("subclass"):
        assert body.startswith(b'{"wrapped":')
    if settings.get("compact") is False or settings.get("debug"):
        assert b'\n  "count"' in body


@pytest.fixture
def currency_app(request, cart_store, products):
    app, _ = build_app(cart_store, products, CART_CURRENCY=request.param, **CONFIG)
    return app


@pytest.mark.parametrize("currency_app", ["JPY", "KWD"], indirect=True)
def test_currencies_with_other_minor_digits(currency_app, products):
    expected_view(currency_app)
    client = currency_app.test_client()
    fill(client, products)
    body = answers_match(client)
    assert b'"currency":"JPY"' in body or b'"currency":"KWD"' in body


@pytest.fixture
def fields_app(cart_store, products):
    app, _ = build_app(cart_store, products, CART_LINE_FIELDS=["slug", "image"], **CONFIG)
    return app


def test_line_fields_take_the_providers_answer(fields_app, products):
    expected_view(fields_app)
    client = fields_app.test_client()
    products["sku-2"].update(slug="spoon", image="/s.png")
    add(client, "sku-2", 1)
    body = answers_match(client)
    assert b'"slug":"spoon"' in body
