"""Cross-site requests, Flask-WTF's CSRFProtect, form posts, and an unavailable store."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import get_flashed_messages, jsonify
from flask_wtf.csrf import CSRFProtect, generate_csrf

from flask_cart import StoreUnavailable, current_cart
from flask_cart.stores.base import CartKey
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.flask.shop import add, build_app, guest_id_of, stored
from tests.helpers import raw_dump

CHANGES = [
    ("POST", "/cart/items", {"product_id": "sku-2"}),
    ("PATCH", "/cart/items/sku-1", {"quantity": 5}),
    ("DELETE", "/cart/items/sku-1", None),
    ("DELETE", "/cart", None),
    ("POST", "/cart/items/sku-1", {"_method": "DELETE"}),
]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:8080"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    ],
)
def test_cross_site_changes_are_refused(client, cart_store, headers):
    add(client, "sku-1", 2)
    key = CartKey(guest_id_of(client))
    before = raw_dump(cart_store, key)
    for method, path, body in CHANGES:
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.json["error"]["code"] == "cross_site"
        form = client.open(
            path, method="POST" if method != "DELETE" else method, data=body or {}, headers=headers
        )
        assert form.status_code in (403, 405)
    assert raw_dump(cart_store, key) == before
    assert client.get("/cart", headers=headers).status_code == 200  # reading is fine


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost"},
        {"Origin": "HTTP://LOCALHOST/"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "https://app.shop.example"},  # CART_TRUSTED_ORIGINS
        # A browser sends another site's trusted origin with Sec-Fetch-Site: cross-site.
        {"Origin": "https://app.shop.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "HTTPS://App.Shop.Example/", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_same_site_changes_are_accepted(cart_store, products, headers):
    app, _ = build_app(cart_store, products, CART_TRUSTED_ORIGINS=["https://app.shop.example"])
    client = app.test_client()
    assert add(client, "sku-1", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://app.shop.example.evil", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
    ],
)
def test_trusted_origins_admit_only_themselves(cart_store, products, headers):
    app, _ = build_app(cart_store, products, CART_TRUSTED_ORIGINS=["https://app.shop.example"])
    client = app.test_client()
    add(client, "sku-1", 2)
    key = CartKey(guest_id_of(client))
    before = raw_dump(cart_store, key)
    trusted = {"Origin": "https://app.shop.example", "Sec-Fetch-Site": "cross-site"}
    for method, path, body in CHANGES:
        response = client.open(path, method=method, json=body, headers=headers)
        assert (response.status_code, response.json["error"]["code"]) == (403, "cross_site")
    assert raw_dump(cart_store, key) == before
    for method, path, body in CHANGES:
        assert client.open(path, method=method, json=body, headers=trusted).status_code in (
            200,
            404,  # the line was removed by the change before
        )


def test_get_never_changes_the_cart(client, cart_store):
    add(client, "sku-1")
    key = CartKey(guest_id_of(client))
    before = raw_dump(cart_store, key)
    client.get("/cart/items?product_id=sku-2&quantity=3")
    client.get("/cart?product_id=sku-2&_method=DELETE")
    assert raw_dump(cart_store, key) == before


@pytest.fixture
def csrf_app(cart_store, products):
    app, _ = build_app(cart_store, products, WTF_CSRF_ENABLED=True)
    CSRFProtect(app)

    @app.get("/token")
    def token() -> Any:
        return jsonify(token=generate_csrf())

    return app


def test_csrf_protect_guards_the_routes(csrf_app, cart_store):
    client = csrf_app.test_client()
    response = add(client, "sku-1")
    assert response.status_code == 403
    assert response.json["error"]["code"] == "csrf_failed"
    assert client.get_cookie("guest_cart_id") is None
    token = client.get("/token").json["token"]
    response = add(client, "sku-1", headers={"X-CSRFToken": token})
    assert response.status_code == 200
    response = client.patch(
        "/cart/items/sku-1", json={"quantity": 3}, headers={"X-CSRFToken": token}
    )
    assert response.json["quantity"] == 3
    response = client.post(
        "/cart/items", data={"product_id": "sku-2", "csrf_token": token, "next": "/done"}
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/done")
    bad = client.delete("/cart", headers={"X-CSRFToken": "forged"})
    assert bad.status_code == 403
    assert stored(cart_store, guest_id_of(client)) == {"sku-1": 3, "sku-2": 1}


def test_form_posts_answer_303(client, cart_store):
    response = client.post(
        "/cart/items", data={"product_id": "sku-1", "quantity": "2", "next": "/basket?x=1"}
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/basket?x=1")
    response = client.post("/cart/items", data={"product_id": "sku-2"})  # quantity 1
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    response = client.post(
        "/cart/items/sku-1",
        data={"_method": "PATCH", "quantity": "5", "next": "http://localhost/cart-page"},
    )
    assert response.headers["Location"] == "http://localhost/cart-page"
    assert stored(cart_store, guest_id_of(client)) == {"sku-1": 5, "sku-2": 1}
    response = client.post(
        "/cart/items/sku-2",
        data={"_method": "DELETE"},
        headers={"Referer": "http://localhost/product/2"},
    )
    assert response.headers["Location"] == "http://localhost/product/2"
    assert stored(cart_store, guest_id_of(client)) == {"sku-1": 5}
    response = client.post("/cart", data={"_method": "DELETE", "next": "/empty"})
    assert (response.status_code, response.headers["Location"]) == (303, "/empty")
    assert stored(cart_store, guest_id_of(client)) == {}


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "http://localhost.evil.example/",
        "\u0000/x",
        "ftp://localhost/",
    ],
)
def test_form_next_to_another_site_is_ignored(client, next_url):
    response = client.post(
        "/cart/items",
        data={"product_id": "sku-1", "next": next_url},
        headers={"Referer": "https://evil.example/"},
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/")


def test_form_errors_flash_and_redirect(app, client, cart_store):
    response = client.post(
        "/cart/items", data={"product_id": "sku-1", "quantity": "2.5", "next": "/p"}
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/p")
    with client.session_transaction() as session:
        assert session["_flashes"][0][0] == "cart-error"
    response = client.post("/cart/items", data={"product_id": "nope"})
    assert response.status_code == 303
    assert client.get_cookie("guest_cart_id") is None
    assert get_flashed_messages is not None


@pytest.mark.parametrize("value", ["-1", "1e3", "", "abc", "99999999999", " ", "0x10"])
def test_form_quantity_must_be_digits(client, value):
    response = client.post("/cart/items", data={"product_id": "sku-1", "quantity": value})
    assert response.status_code == 303
    assert client.get_cookie("guest_cart_id") is None


# -- the store unavailable: 503, fast; pages that do not touch the cart work ------------------


def broken_store(kind: str, tmp_path: Any) -> Any:
    if kind == "redis":
        return RedisStore.from_url("redis://127.0.0.1:1/0", timeout=0.5, prefix="never:")
    if kind == "postgres":
        engine = sa.create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:1/test", connect_args={"connect_timeout": 1}
        )
        return SQLStore(engine, table_name="never")
    if kind == "mariadb":
        url = "mysql+pymysql://root@127.0.0.1:1/test"
        return SQLStore(SQLStore.create_engine(url, timeout=1), table_name="never", timeout=1)
    return SQLStore(sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"))


def test_store_unavailable_is_503(store_kind, products, tmp_path):
    app, _ = build_app(broken_store(store_kind, tmp_path), products, CART_HANDLE_STORE_ERRORS=True)
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/cart").status_code == 200  # a new guest: nothing to read
    for method, path, body in [("POST", "/cart/items", {"product_id": "sku-1"})]:
        response = client.open(path, method=method, json=body)
        assert response.status_code == 503
        assert response.json["error"]["code"] == "store_unavailable"
    client.post("/login/42")  # the login view touches the cart: 503 from the app handler
    response = client.get("/cart")
    assert response.status_code == 503
    assert client.get("/").status_code == 200


def test_the_app_s_own_pages_keep_their_own_error_handling(store_kind, products, tmp_path):
    """Without CART_HANDLE_STORE_ERRORS, flask-cart registers no app-wide handler: the cart
    routes still answer 503, a shop page that touches the cart is the shop's to answer."""
    app, _ = build_app(broken_store(store_kind, tmp_path), products)
    assert StoreUnavailable not in app.error_handler_spec[None][None]
    seen: list[str] = []

    @app.errorhandler(StoreUnavailable)
    def own_page(exc: StoreUnavailable) -> tuple[str, int]:
        seen.append(exc.code)
        return "the shop's own page", 503

    @app.post("/wish/<product_id>")
    def wish(product_id: str) -> str:
        current_cart.add(product_id, "1.00")  # a shop page that changes the cart
        return "added"

    client = app.test_client()
    response = client.post("/cart/items", json={"product_id": "sku-1"})
    assert response.status_code == 503
    assert response.json["error"]["code"] == "store_unavailable"
    assert seen == []  # the blueprint answered its own route
    response = client.post("/login/42")  # the login view reads the cart: it degrades
    assert (response.status_code, response.json["quantity"]) == (200, 0)
    assert seen == []
    response = client.post("/wish/sku-1")
    assert response.get_data(as_text=True) == "the shop's own page"
    assert seen == ["store_unavailable"]
