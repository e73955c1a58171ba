"""The JSON routes on every store: the guest journey, each route, every bad input."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from itsdangerous import Signer

from flask_cart import signals
from flask_cart.identity import GUEST_SALT
from flask_cart.stores.base import CartKey
from tests.flask.shop import SECRET, add, guest_id_of, stored
from tests.helpers import raw_dump


def set_cookie_headers(response: Any) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def sign(value: str, key: str = SECRET) -> str:
    return Signer(key.encode(), salt=GUEST_SALT).sign(value).decode()


def test_guest_journey(app, client, cart_store):
    assert client.get("/cart").json["items"] == []
    response = add(client, "sku-1", 2)
    assert response.status_code == 200
    assert response.json == {
        "instance": "cart",
        "items": [
            {
                "product_id": "sku-1",
                "name": "Mug",
                "quantity": 2,
                "unit_cost": "9.99",
                "line_total": "19.98",
                "price_changed": False,
                "available": True,
                "unavailable_reason": None,
            }
        ],
        "count": 1,
        "quantity": 2,
        "total_cost": "19.98",
        "currency": "USD",
        "updated_at": response.json["updated_at"],
        "token": response.json["token"],
    }
    assert response.json["updated_at"].endswith("Z")
    add(client, "sku-2")
    guest = guest_id_of(client)
    assert stored(cart_store, guest) == {"sku-1": 2, "sku-2": 1}
    # Come back later with only the guest cookie: the cart is still there.
    later = app.test_client()
    later.set_cookie("guest_cart_id", client.get_cookie("guest_cart_id").value)
    body = later.get("/cart").json
    assert [(i["product_id"], i["quantity"]) for i in body["items"]] == [("sku-1", 2), ("sku-2", 1)]
    assert body["total_cost"] == "24.48"


def test_a_visit_sets_no_cookie_and_stores_nothing(client, cart_store):
    for path in ("/", "/cart", "/badge", "/cart?instance=wishlist"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers.getlist("Set-Cookie") == []
    assert client.get("/badge").text.startswith("0 in")
    assert client.get_cookie("guest_cart_id") is None


def test_guest_cookie_flags(client):
    header = set_cookie_headers(add(client, "sku-1"))["guest_cart_id"]
    parts = [p.strip() for p in header.split(";")]
    assert "HttpOnly" in parts
    assert "SameSite=Lax" in parts
    assert "Path=/" in parts
    assert f"Max-Age={30 * 86400}" in parts
    assert "Secure" not in parts
    assert not any(p.lower().startswith("domain") for p in parts)
    value = parts[0].split("=", 1)[1]
    guest, _ = value.split(".", 1)
    assert Signer(SECRET.encode(), salt=GUEST_SALT).unsign(value).decode() == guest
    assert len(guest) == 36 and guest[14] == "4"


def test_guest_cookie_secure_over_https(app):
    client = app.test_client()
    response = client.post(
        "/cart/items", json={"product_id": "sku-1"}, base_url="https://localhost"
    )
    assert "Secure" in set_cookie_headers(response)["guest_cart_id"]


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "",
        "x" * 4000,
        "6f1f0b4e-7cb5-4c1e-9b0a-3e2b7c1d9f00.badsignature",
        sign("customer:42"),
        sign("6f1f0b4e-7cb5-1c1e-9b0a-3e2b7c1d9f00"),  # a UUID1, not issued by us
        sign("6F1F0B4E-7CB5-4C1E-9B0A-3E2B7C1D9F00"),  # not the canonical form
        sign("6f1f0b4e-7cb5-4c1e-9b0a-3e2b7c1d9f00", key="another-app"),
        "\u00e9\u00e8.\u00e0",
    ],
)
def test_bad_guest_cookies_are_ignored(client, cart_store, cookie):
    client.set_cookie("guest_cart_id", cookie)
    assert client.get("/cart").json["items"] == []
    assert add(client, "sku-1").status_code == 200
    guest = guest_id_of(client)
    assert guest is not None and cookie.split(".")[0] != guest
    assert stored(cart_store, guest) == {"sku-1": 1}


def test_a_signed_cookie_naming_no_cart_is_not_adopted(client, cart_store):
    unknown = "6f1f0b4e-7cb5-4c1e-9b0a-3e2b7c1d9f00"
    client.set_cookie("guest_cart_id", sign(unknown))
    assert client.get("/cart").json["items"] == []
    assert add(client, "sku-1").status_code == 200
    guest = guest_id_of(client)
    assert guest != unknown
    assert stored(cart_store, guest) == {"sku-1": 1}
    assert not cart_store.load(CartKey(unknown)).exists
    add(client, "sku-1")  # and the new id sticks
    assert guest_id_of(client) == guest
    assert stored(cart_store, guest) == {"sku-1": 2}


def test_each_route(client):
    assert add(client, "sku-1").json["quantity"] == 1
    client.post("/cart/items", json={"product_id": "sku-1"})  # quantity defaults to 1
    assert add(client, "sku-2", 3).json["quantity"] == 5
    body = client.patch("/cart/items/sku-1", json={"quantity": 7}).json
    assert {i["product_id"]: i["quantity"] for i in body["items"]} == {"sku-1": 7, "sku-2": 3}
    body = client.patch("/cart/items/sku-2", json={"quantity": 0}).json
    assert [i["product_id"] for i in body["items"]] == ["sku-1"]
    add(client, "sku-3")
    body = client.delete("/cart/items/sku-1").json
    assert [i["product_id"] for i in body["items"]] == ["sku-3"]
    body = client.delete("/cart").json
    assert body["items"] == [] and body["total_cost"] == "0.00"


def test_instances_are_separate(client, cart_store):
    add(client, "sku-1")
    response = client.post("/cart/items?instance=wishlist", json={"product_id": "sku-2"})
    assert response.json["instance"] == "wishlist"
    guest = guest_id_of(client)
    assert stored(cart_store, guest) == {"sku-1": 1}
    assert stored(cart_store, guest, "wishlist") == {"sku-2": 1}
    assert client.get("/cart?instance=wishlist").json["quantity"] == 1
    response = client.get("/cart?instance=basket")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_instance"


def test_prices_come_only_from_the_loader(client, cart_store):
    response = client.post(
        "/cart/items",
        json={"product_id": "sku-1", "quantity": 1, "unit_cost": "0.01", "price": 0},
    )
    assert response.json["items"][0]["unit_cost"] == "9.99"
    line = cart_store.load(CartKey(guest_id_of(client))).lines["sku-1"]
    assert line.unit_cost == "9.99"


def test_lines_are_repriced_on_load(app, carts, client, products):
    add(client, "sku-1", 2)
    add(client, "sku-2")
    products["sku-1"]["unit_cost"] = Decimal("11.00")
    del products["sku-2"]
    # Inside the sync window the browser's copy is served ...
    assert client.get("/cart").json["items"][0]["price_changed"] is False
    # ... after it, the store is read and the lines re-priced.
    now = carts.clock()
    carts.clock = lambda: now + 31
    body = client.get("/cart").json
    first, second = body["items"]
    assert first["unit_cost"] == "11.00" and first["price_changed"] is True
    assert first["line_total"] == "22.00"
    assert second["available"] is False and second["unit_cost"] == "4.50"
    assert second["unavailable_reason"] == "unknown_product"
    assert first["unavailable_reason"] is None
    assert body["total_cost"] == "22.00"
    assert body["count"] == 2 and body["quantity"] == 3


def test_cart_responses_are_private(client):
    for response in (client.get("/cart"), add(client, "sku-1"), add(client, "nope")):
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "Cookie" in response.headers["Vary"]


def test_signals(app, client):
    seen: list[tuple[str, dict[str, Any]]] = []

    def receiver(name):
        def record(sender, **kwargs):
            assert sender is app
            seen.append((name, kwargs))

        return record

    receivers = {name: receiver(name) for name in signals.__all__}
    for name, fn in receivers.items():
        getattr(signals, name).connect(fn)
    try:
        add(client, "sku-1", 2)
        client.patch("/cart/items/sku-1", json={"quantity": 3})
        add(client, "sku-2")
        client.delete("/cart/items/sku-2")
        client.delete("/cart")
    finally:
        for name, fn in receivers.items():
            getattr(signals, name).disconnect(fn)
    names = [name for name, _ in seen]
    assert names == [
        "cart_item_added",
        "cart_item_updated",
        "cart_item_added",
        "cart_item_removed",
        "cart_cleared",
    ]
    added = seen[0][1]
    assert added["product_id"] == "sku-1" and added["quantity"] == 2
    assert added["line"]["quantity"] == 2 and added["line"]["unit_cost"] == Decimal("9.99")
    assert seen[1][1]["quantity"] == 3
    assert seen[3][1]["product_id"] == "sku-2"


def test_checkout(app, client, cart_store):
    done = []
    signals.cart_checked_out.connect(lambda sender, **kw: done.append(kw), weak=False)
    try:
        add(client, "sku-1", 2)
        add(client, "sku-3")
        guest = guest_id_of(client)
        response = client.post("/checkout")
    finally:
        signals.cart_checked_out.receivers.clear()
    assert response.json == {"items": {"sku-1": 2, "sku-3": 1}, "total_cost": "31.98"}
    assert "guest_cart_id=;" in set_cookie_headers(response)["guest_cart_id"]
    assert client.get_cookie("guest_cart_id") is None
    assert not cart_store.load(CartKey(guest)).exists
    assert client.get("/cart").json["items"] == []
    assert done[0]["snapshot"]["quantity"] == 3


def test_template_global(client):
    add(client, "sku-1", 4)
    assert client.get("/badge").text.startswith("4 in")


# -- bad input: status, code, and the store unchanged ----------------------------------------

BAD_ADDS = [
    ({"product_id": "sku-1", "quantity": True}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": False}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": 2.5}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": 2.0}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": "3"}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": None}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": [1]}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": -1}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": 0}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": 2**63}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": -(2**63)}, 400, "invalid_quantity"),
    ({"product_id": "sku-1", "quantity": 1000}, 422, "quantity_limit"),
    ({"product_id": "sku-2", "quantity": 995}, 422, "quantity_limit"),
    ({"quantity": 1}, 400, "invalid_product_id"),
    ({"product_id": 5}, 400, "invalid_product_id"),
    ({"product_id": ""}, 400, "invalid_product_id"),
    ({"product_id": None}, 400, "invalid_product_id"),
    ({"product_id": "x" * 129}, 400, "invalid_product_id"),
    ({"product_id": "a\nb"}, 400, "invalid_product_id"),
    ({"product_id": "no-such-product"}, 404, "unknown_product"),
    ({"product_id": "limited", "quantity": 4}, 422, "insufficient_stock"),
    ({"product_id": "sold-out"}, 422, "insufficient_stock"),
]
RAW_BODIES = [
    ('{"product_id": "sku-1", "quantity": NaN}', "application/json", "malformed_body"),
    ('{"product_id": "sku-1", "quantity": Infinity}', "application/json", "malformed_body"),
    ('{"product_id": "sku-1"', "application/json", "malformed_body"),
    ("[1, 2]", "application/json", "malformed_body"),
    ('"sku-1"', "application/json", "malformed_body"),
    ("[" * 100000, "application/json", "malformed_body"),
    ('{"quantity": 1' + "0" * 5000 + "}", "application/json", "malformed_body"),
    ("\xff\xfe{}", "application/json", "malformed_body"),
    ('{"product_id": "sku-1"}', "text/plain", "malformed_body"),
    ('{"product_id": "' + "x" * 20000 + '"}', "application/json", "malformed_body"),
]


@pytest.fixture
def guest_with_cart(client, cart_store):
    add(client, "sku-1", 2)
    add(client, "limited", 1)
    add(client, "sku-2", 5)
    key = CartKey(guest_id_of(client))
    return key, raw_dump(cart_store, key)


@pytest.mark.parametrize(("body", "status", "code"), BAD_ADDS)
def test_bad_add(client, cart_store, guest_with_cart, body, status, code):
    key, before = guest_with_cart
    response = client.post("/cart/items", json=body)
    assert (response.status_code, response.json["error"]["code"]) == (status, code)
    assert set(response.json["error"]) == {"code", "message"}
    assert raw_dump(cart_store, key) == before


@pytest.mark.parametrize(("raw", "content_type", "code"), RAW_BODIES)
def test_malformed_bodies(client, cart_store, guest_with_cart, raw, content_type, code):
    key, before = guest_with_cart
    for method, path in (("POST", "/cart/items"), ("PATCH", "/cart/items/sku-1")):
        response = client.open(
            path, method=method, data=raw.encode("latin-1"), content_type=content_type
        )
        assert (response.status_code, response.json["error"]["code"]) == (400, code)
    assert raw_dump(cart_store, key) == before


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/cart/items/sku-1", {}, 400, "invalid_quantity"),
        ("/cart/items/sku-1", {"quantity": -1}, 400, "invalid_quantity"),
        ("/cart/items/sku-1", {"quantity": "2"}, 400, "invalid_quantity"),
        ("/cart/items/sku-1", {"quantity": True}, 400, "invalid_quantity"),
        ("/cart/items/sku-1", {"quantity": 1.5}, 400, "invalid_quantity"),
        ("/cart/items/sku-1", {"quantity": 1000}, 422, "quantity_limit"),
        ("/cart/items/sku-1", {"quantity": 51}, 422, "insufficient_stock"),
        ("/cart/items/limited", {"quantity": 4}, 422, "insufficient_stock"),
        ("/cart/items/sku-3", {"quantity": 1}, 404, "line_not_found"),
        ("/cart/items/sku-3", {"quantity": 0}, 404, "line_not_found"),
        ("/cart/items/nope", {"quantity": 1}, 404, "unknown_product"),
        ("/cart/items/" + "x" * 129, {"quantity": 1}, 400, "invalid_product_id"),
        ("/cart/items/a%00b", {"quantity": 1}, 400, "invalid_product_id"),
    ],
)
def test_bad_patch(client, cart_store, guest_with_cart, path, body, status, code):
    key, before = guest_with_cart
    response = client.patch(path, json=body)
    assert (response.status_code, response.json["error"]["code"]) == (status, code)
    assert raw_dump(cart_store, key) == before


def test_bad_delete(client, cart_store, guest_with_cart):
    key, before = guest_with_cart
    response = client.delete("/cart/items/sku-3")
    assert (response.status_code, response.json["error"]["code"]) == (404, "line_not_found")
    response = client.delete("/cart/items/" + "y" * 200)
    assert (response.status_code, response.json["error"]["code"]) == (400, "invalid_product_id")
    assert raw_dump(cart_store, key) == before


def test_caps_messages_say_the_limit(app_config, cart_store, products):
    from tests.flask.shop import build_app

    app, _ = build_app(cart_store, products, CART_MAX_LINES=2, CART_MAX_LINE_QUANTITY=5)
    client = app.test_client()
    add(client, "sku-1", 5)
    add(client, "sku-2")
    response = add(client, "sku-3")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "line_limit"
    assert "2 lines" in response.json["error"]["message"]
    response = add(client, "sku-1")
    assert response.status_code == 422
    assert "5 per line" in response.json["error"]["message"]
    response = add(client, "limited", 3)
    assert response.status_code == 422  # still the line cap: the cart is full
    client.delete("/cart/items/sku-2")
    add(client, "limited", 2)
    response = add(client, "limited", 2)
    assert response.json["error"]["code"] == "insufficient_stock"
    assert "only 3" in response.json["error"]["message"]
    assert "2 already in the cart" in response.json["error"]["message"]


def test_missing_product_loader_says_so(cart_store):
    from flask import Flask

    from flask_cart import CartManager

    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", CART_STORE=cart_store, TESTING=True)
    CartManager(app)
    with pytest.raises(RuntimeError, match="product_loader"):
        app.test_client().post("/cart/items", json={"product_id": "sku-1"})


# -- bad catalogue data: the line shows unavailable, never a 500 ----------------------------

BAD_ROWS = [
    pytest.param({"unit_cost": Decimal("NaN"), "name": "Flaky"}, "bad_product_data", id="nan"),
    pytest.param({"unit_cost": float("nan")}, "bad_product_data", id="float-nan"),
    pytest.param({"unit_cost": -1}, "bad_product_data", id="negative"),
    pytest.param({"unit_cost": None}, "bad_product_data", id="no-price"),
    pytest.param({"name": "Flaky"}, "bad_product_data", id="missing-price"),
    pytest.param({"unit_cost": "5.00", "stock": 5.0}, "bad_product_data", id="float-stock"),
    pytest.param({"unit_cost": "5.00", "stock": "5"}, "bad_product_data", id="str-stock"),
    pytest.param(RuntimeError("catalogue database down"), "loader_error", id="raises"),
    pytest.param(KeyError("flaky"), "unknown_product", id="lookup-error"),
]


@pytest.fixture
def flaky_cart(client, carts, products):
    """A guest cart with sku-1 x2 and "flaky" x1, whose catalogue row then turns bad."""
    products["flaky"] = {"unit_cost": Decimal("5.00"), "name": "Flaky"}
    add(client, "sku-1", 2)
    add(client, "flaky")
    now = carts.clock()
    carts.clock = lambda: now + 60  # past the sync window: every read goes to the store


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_a_bad_catalogue_row_shows_the_line_unavailable(
    client, cart_store, products, flaky_cart, caplog, row, reason
):
    products["flaky"] = row
    caplog.set_level(logging.WARNING, logger="flask_cart")
    body = client.get("/cart").json
    flaky = next(item for item in body["items"] if item["product_id"] == "flaky")
    assert (flaky["available"], flaky["unavailable_reason"]) == (False, reason)
    assert flaky["unit_cost"] == "5.00" and flaky["quantity"] == 1
    assert body["total_cost"] == "19.98" and body["quantity"] == 3
    if reason != "unknown_product":
        logged = [r for r in caplog.records if r.name == "flask_cart" and "flaky" in r.getMessage()]
        assert logged and logged[0].levelno >= logging.ERROR
    # Every other change still answers 200, after its write (so a retry never adds twice).
    response = add(client, "sku-1")
    assert response.status_code == 200 and response.json["total_cost"] == "29.97"
    response = client.patch("/cart/items/sku-1", json={"quantity": 1})
    assert response.status_code == 200 and response.json["total_cost"] == "9.99"
    assert client.post("/login/7").status_code == 200  # the login merge reads the stock
    assert client.get("/cart").json["quantity"] == 2
    assert client.delete("/cart/items/flaky").json["items"][0]["product_id"] == "sku-1"


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_a_product_with_bad_catalogue_data_cannot_be_added(
    client, cart_store, products, flaky_cart, row, reason
):
    products["flaky"] = row
    key = CartKey(guest_id_of(client))
    before = raw_dump(cart_store, key)
    expected = (
        (404, "unknown_product") if reason == "unknown_product" else (422, "product_unavailable")
    )
    for response in (
        add(client, "flaky"),
        client.patch("/cart/items/flaky", json={"quantity": 3}),
        client.post("/cart/items/flaky", json={"_method": "PATCH", "quantity": 2}),
    ):
        assert (response.status_code, response.json["error"]["code"]) == expected
        assert set(response.json["error"]) == {"code", "message"}
    assert raw_dump(cart_store, key) == before
    response = client.patch("/cart/items/flaky", json={"quantity": 0})  # removing is fine
    assert response.status_code == 200 and stored(cart_store, key.identifier) == {"sku-1": 2}


# -- unmatched URLs and methods under the prefix answer the JSON error ----------------------

UNMATCHED = [
    ("PUT", "/cart", 405, "method_not_allowed"),
    ("PATCH", "/cart", 405, "method_not_allowed"),
    ("GET", "/cart/items", 405, "method_not_allowed"),
    ("PUT", "/cart/items/sku-1", 405, "method_not_allowed"),
    ("GET", "/cart/items/sku-1", 405, "method_not_allowed"),
    ("DELETE", "/cart/items/p1%0A", 404, "not_found"),
    ("PATCH", "/cart/items/p1%0A", 404, "not_found"),
    ("GET", "/cart/nope", 404, "not_found"),
    ("POST", "/cart/nope/deeper", 404, "not_found"),
    ("DELETE", "/cart/items/", 404, "not_found"),
]


@pytest.mark.parametrize(("method", "path", "status", "code"), UNMATCHED)
def test_unmatched_urls_under_the_prefix_answer_json(
    client, cart_store, guest_with_cart, method, path, status, code
):
    key, before = guest_with_cart
    response = client.open(path, method=method, json={"product_id": "sku-1", "quantity": 3})
    assert response.status_code == status
    assert response.is_json, response.data[:200]
    assert response.json["error"]["code"] == code
    assert set(response.json["error"]) == {"code", "message"}
    if status == 405:
        assert response.headers["Allow"]
        assert method not in response.headers["Allow"]
    assert raw_dump(cart_store, key) == before


def test_unmatched_urls_outside_the_prefix_stay_the_shops(cart_store, products):
    from tests.flask.shop import build_app

    app, _ = build_app(cart_store, products, CART_URL_PREFIX="/api/basket")

    @app.errorhandler(404)
    def shop_not_found(exc: Any) -> Any:
        return "the shop's own 404 page", 404

    client = app.test_client()
    for path in ("/nope", "/cart/nope", "/api/basketball", "/api/bask"):
        response = client.get(path)
        assert (response.status_code, response.text) == (404, "the shop's own 404 page")
    response = client.post("/")  # the shop's GET-only page: Flask's own 405
    assert response.status_code == 405 and not response.is_json
    response = client.get("/api/basket/nope")
    assert (response.status_code, response.json["error"]["code"]) == (404, "not_found")
    response = client.put("/api/basket")
    assert (response.status_code, response.json["error"]["code"]) == (405, "method_not_allowed")
    assert client.get("/api/basket").status_code == 200


def test_unmatched_urls_without_a_handler_keep_flasks_pages(client):
    response = client.get("/nope")
    assert response.status_code == 404 and not response.is_json
    assert client.get("/cartoon").status_code == 404 and not client.get("/cartoon").is_json


def test_product_errors_carry_the_product_id(app, cart_store):
    from flask_cart import StockExceeded, UnknownProduct, current_cart

    with app.test_request_context("/"):
        with pytest.raises(StockExceeded) as stock:
            current_cart.add_item("limited", 4)
        with pytest.raises(UnknownProduct) as unknown:
            current_cart.add_item("no-such-product", 1)
    assert stock.value.details["product_id"] == "limited"
    assert unknown.value.details["product_id"] == "no-such-product"


def test_a_shop_page_touching_the_cart_adds_cookie_to_its_own_vary(app, client):
    from flask import make_response

    from flask_cart import current_cart

    @app.get("/varied")
    def varied() -> Any:
        current_cart.add_item("sku-1")
        response = make_response("ok")
        response.headers["Vary"] = "Accept-Encoding"
        return response

    response = client.get("/varied")
    assert response.status_code == 200
    assert set(response.headers["Vary"].replace(" ", "").split(",")) == {
        "Accept-Encoding",
        "Cookie",
    }
