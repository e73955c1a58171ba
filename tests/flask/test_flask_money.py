"""Money in the currency's minor unit, minor-unit prices, and further loader fields on lines.

On every store: money strings (JSON) and Decimals (Python) carry exactly CART_CURRENCY's
minor digits (USD 2, JPY 0, KWD 3); a line total is unit cost x quantity rounded half-up and
the total is the sum of the line totals shown; the token still follows every price change.
A loader may give `unit_cost_minor`. CART_LINE_FIELDS copies loader fields onto each line
(JSON and Python) as the loader gives them now, JSON-safe, never frozen in the store.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, jsonify

from flask_cart import CartManager, current_cart
from flask_cart.stores.base import CartKey
from tests.flask.shop import add, build_app


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"CART_STORE_TIMEOUT": 30}


def items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["product_id"]: item for item in body["items"]}


def money(body: dict[str, Any], product_id: str) -> tuple[str, str]:
    item = items(body)[product_id]
    return item["unit_cost"], item["line_total"]


def python_view(app: Flask) -> None:
    """A page showing the Python money of the request's cart."""

    @app.get("/py")
    def py_view() -> Any:
        details = current_cart.get()
        return jsonify(
            total=str(current_cart.total_cost()),
            lines={pid: [str(d["unit_cost"]), str(d["line_total"])] for pid, d in details.items()},
            one={k: str(v) for k, v in current_cart.get_product("sku-3").items()},
        )


# -- item 8: money ------------------------------------------------------------------------


def test_whole_number_prices_show_two_decimals_in_json_and_python(app, client, products):
    python_view(app)
    products["tv"] = {"unit_cost": 79900, "name": "TV"}
    add(client, "sku-3", 2)  # unit_cost "12"
    body = add(client, "tv", 1).json
    assert money(body, "sku-3") == ("12.00", "24.00")
    assert money(body, "tv") == ("79900.00", "79900.00")
    assert body["total_cost"] == "79924.00" and body["currency"] == "USD"
    assert client.get("/cart").json["total_cost"] == "79924.00"
    page = client.get("/py").json
    assert page["total"] == "79924.00"
    assert page["lines"] == {"sku-3": ["12.00", "24.00"], "tv": ["79900.00", "79900.00"]}
    assert page["one"]["unit_cost"] == "12.00" and page["one"]["line_total"] == "24.00"


def test_an_empty_cart_totals_zero_in_the_minor_unit(client):
    assert client.get("/cart").json["total_cost"] == "0.00"


def test_line_totals_round_half_up_and_the_total_is_the_sum_of_lines_shown(app, client, products):
    python_view(app)
    products["screw"] = {"unit_cost": Decimal("0.105"), "name": "Screw"}
    products["nut"] = {"unit_cost": "0.105000", "name": "Nut"}
    add(client, "screw", 3)  # 0.315 -> 0.32
    body = add(client, "nut", 1).json  # 0.105 -> 0.11
    assert money(body, "screw") == ("0.11", "0.32")
    assert money(body, "nut") == ("0.11", "0.11")
    assert body["total_cost"] == "0.43"  # 0.32 + 0.11, not round(0.42) of the exact sum
    assert client.get("/py").json["total"] == "0.43"


def test_the_token_changes_with_a_price_change_below_the_minor_unit(app, client, products):
    products["screw"] = {"unit_cost": Decimal("0.1051"), "name": "Screw"}
    add(client, "screw", 1)
    first = client.get("/cart").json
    products["screw"]["unit_cost"] = Decimal("0.1052")  # both show as "0.11"
    add(client, "screw", 1)
    client.patch("/cart/items/screw", json={"quantity": 1})
    second = client.get("/cart").json
    assert money(first, "screw") == money(second, "screw") == ("0.11", "0.11")
    assert first["token"] != second["token"]


@pytest.mark.parametrize(
    ("currency", "price", "shown", "line_total"),
    [
        ("JPY", Decimal("1500"), "1500", "4500"),
        ("JPY", Decimal("99.5"), "100", "299"),  # 298.5 -> 299
        ("KWD", Decimal("1.5"), "1.500", "4.500"),
        ("BHD", "2", "2.000", "6.000"),
        ("eur", 3, "3.00", "9.00"),
    ],
)
def test_each_currency_shows_its_own_minor_digits(
    app_config, products, cart_store, currency, price, shown, line_total
):
    products["x"] = {"unit_cost": price, "name": "X"}
    app = build_app(cart_store, products, **app_config, CART_CURRENCY=currency)[0]
    body = add(app.test_client(), "x", 3).json
    assert money(body, "x") == (shown, line_total)
    assert body["total_cost"] == line_total and body["currency"] == currency.upper()


@pytest.mark.parametrize(
    ("currency", "minor", "shown"),
    [("USD", 7999, "79.99"), ("JPY", 7999, "7999"), ("KWD", 7999, "7.999"), ("USD", 0, "0.00")],
)
def test_a_loader_may_give_the_price_in_minor_units(
    app_config, products, cart_store, currency, minor, shown
):
    products["x"] = {"unit_cost_minor": minor, "name": "X"}
    app = build_app(cart_store, products, **app_config, CART_CURRENCY=currency)[0]
    body = add(app.test_client(), "x", 1).json
    assert money(body, "x") == (shown, shown)


def test_minor_units_work_on_every_store(app, client, products, cart_store):
    products["x"] = {"unit_cost_minor": 7999, "name": "X"}
    body = add(client, "x", 2).json
    assert money(body, "x") == ("79.99", "159.98")
    key = CartKey(client.get_cookie("guest_cart_id").value.split(".", 1)[0])
    assert cart_store.load(key).lines["x"].unit_cost == "79.99"


@pytest.mark.parametrize(
    "product",
    [
        {"unit_cost_minor": True},
        {"unit_cost_minor": 79.99},
        {"unit_cost_minor": -1},
        {"unit_cost_minor": "7999"},
        {"unit_cost_minor": 7999, "unit_cost": "80.00"},  # they disagree
    ],
    ids=["bool", "float", "negative", "str", "disagreeing"],
)
def test_bad_minor_unit_prices_are_bad_product_data_and_change_nothing(
    app, client, products, cart_store, product
):
    add(client, "sku-1", 1)
    before = client.get("/cart").json
    products["x"] = product
    response = add(client, "x", 1)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "product_unavailable"
    after = client.get("/cart").json
    assert items(after) == items(before)


def test_agreeing_major_and_minor_prices_are_accepted(client, products):
    products["x"] = {"unit_cost_minor": 7999, "unit_cost": Decimal("79.99")}
    assert money(add(client, "x", 1).json, "x") == ("79.99", "79.99")


@pytest.mark.parametrize("currency", ["US", "USDX", "U$D", "ÜSD", 840, None, ""])
def test_cart_currency_must_be_three_ascii_letters(tmp_path, currency):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s", CART_CURRENCY=currency)
    with pytest.raises(ValueError, match="CART_CURRENCY"):
        CartManager(app)


# -- item 9: further loader fields on each line ---------------------------------------------------


#: The app's config for the CART_LINE_FIELDS tests (the app is built before the test runs).
FIELDS_CONFIG = {
    "CART_STORE_TIMEOUT": 30,
    "CART_LINE_FIELDS": ("image_url", "url"),
    "CART_SYNC_SECONDS": 0,
}


@pytest.fixture
def with_fields(products: dict[str, Any]) -> None:
    products["sku-1"].update(image_url="/img/mug.png", url="/p/mug")


@pytest.mark.parametrize("app_config", [FIELDS_CONFIG])
def test_line_fields_reach_json_and_python_as_the_loader_gives_them_now(
    with_fields, app, client, products, cart_store
):
    @app.get("/py-fields")
    def py_fields() -> Any:
        line = current_cart.get_product("sku-1")
        return jsonify(
            get=current_cart.get()["sku-1"]["image_url"],
            image_url=line["image_url"],
            url=line["url"],
            spoon={k: current_cart.get_product("sku-2").get(k, "absent") for k in ("url",)},
        )

    body = add(client, "sku-1", 1).json
    add(client, "sku-2", 1)
    item = items(body)["sku-1"]
    assert (item["image_url"], item["url"]) == ("/img/mug.png", "/p/mug")
    products["sku-1"]["image_url"] = "/img/mug-v2.png"  # the catalogue changes its picture
    body = client.get("/cart").json
    assert items(body)["sku-1"]["image_url"] == "/img/mug-v2.png"
    assert items(body)["sku-2"]["image_url"] is None  # the loader gives none
    page = client.get("/py-fields").json
    assert page == {
        "get": "/img/mug-v2.png",
        "image_url": "/img/mug-v2.png",
        "url": "/p/mug",
        "spoon": {"url": None},
    }
    key = CartKey(client.get_cookie("guest_cart_id").value.split(".", 1)[0])
    assert "image_url" not in cart_store.load(key).lines["sku-1"].extra  # not frozen


@pytest.mark.parametrize("app_config", [FIELDS_CONFIG])
def test_line_fields_of_a_withdrawn_product_are_none(with_fields, client, products):
    add(client, "sku-1", 1)
    del products["sku-1"]
    item = items(client.get("/cart").json)["sku-1"]
    assert item["available"] is False and item["image_url"] is None and item["url"] is None


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("/a.png", "/a.png"),
        (3, 3),
        (True, True),
        (None, None),
        (2.5, 2.5),
        (Decimal("1.50"), "1.50"),
        (float("nan"), None),
        (float("inf"), None),
        (Decimal("NaN"), None),
        (b"bytes", None),
        (Opaque(), None),
        (["a", "list"], None),
    ],
    ids=lambda v: type(v).__name__,
)
def test_line_field_values_are_json_safe_and_never_break_the_sync_cookie(
    app_config, products, cart_store, caplog, value, shown
):
    app_config.update(CART_LINE_FIELDS=("image_url",))
    products["sku-1"]["image_url"] = value
    app = build_app(cart_store, products, **app_config)[0]
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_cart"):
        response = add(client, "sku-1", 1)
        assert response.status_code == 200, response.data
        assert items(response.json)["sku-1"]["image_url"] == shown
        again = client.get("/cart")  # served from the sync cookie the add set
        assert again.status_code == 200 and items(again.json)["sku-1"]["image_url"] == shown
    assert client.get_cookie("cart_sync") is not None


@pytest.mark.parametrize(
    "fields",
    ["image_url", ("name",), ("line_total",), ("unit_cost_minor",), ("bad-name",), (1,), None],
)
def test_cart_line_fields_must_be_field_names_a_line_does_not_have(tmp_path, fields):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="s", CART_LINE_FIELDS=fields)
    with pytest.raises(ValueError, match="CART_LINE_FIELDS"):
        CartManager(app)
