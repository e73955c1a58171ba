"""What a shopper sees where the cart meets a browser: a page they navigated to or a form
they posted never answers a JSON body; it lands on the shop with a flashed message or
shows an HTML page from ``templates/flask_cart/``. ``fetch`` and JSON clients keep the
JSON bodies. On every store (the `app` fixture), and on a store that is down."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from flask_cart import StoreUnavailable, current_cart, wants_page
from flask_cart.shopper import plural
from flask_cart.stores.base import CartKey
from tests.flask.shop import add, build_app, guest_id_of, stored
from tests.flask.test_flask_security import broken_store
from tests.helpers import raw_dump

NAVIGATE = {
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1",
}
FORM_POST = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
FETCH = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Site": "same-origin"}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#: What a shopper's page may never show of the servers behind the shop.
SERVER_WORDS = ("127.0.0.1", ":1/", "Error ", "refused", "sqlite", "psycopg", "pymysql", "redis")


def flashes(client: Any) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


def lines(client: Any) -> dict[str, int]:
    items = client.get("/cart").json["items"]
    return {item["product_id"]: item["quantity"] for item in items}


def assert_page(response: Any, status: int) -> str:
    """An HTML page (never JSON) with the status, the page headers and no server detail."""
    assert response.status_code == status, response.data
    assert response.mimetype == "text/html"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "private, no-store"
    html: str = response.get_data(as_text=True)
    assert html.lstrip().lower().startswith("<!doctype html>")
    for word in SERVER_WORDS:
        assert word not in html, word
    return html


# -- the rule: which request wants a page --------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (NAVIGATE, None, True),
        ({"Sec-Fetch-Mode": "navigate", "Accept": "application/json"}, None, True),
        (FETCH, None, False),
        ({"Sec-Fetch-Mode": "no-cors"}, None, False),
        ({"Sec-Fetch-Mode": "same-origin"}, {"form": "x"}, False),
        ({"Accept": BROWSER_ACCEPT}, None, True),
        ({"Accept": "application/json"}, None, False),
        ({"Accept": "application/json, text/html;q=0.5"}, {"form": "x"}, False),
        ({}, {"form": "x"}, True),
        ({}, {"json": "x"}, False),
        ({"Accept": BROWSER_ACCEPT, "X-Requested-With": "XMLHttpRequest"}, None, False),
        ({"Accept": "*/*"}, None, False),  # curl
        ({}, None, False),
    ],
)
def test_wants_page_is_a_navigation_or_a_form_post_never_fetch(headers, body, expected):
    app = Flask(__name__)
    kwargs: dict[str, Any] = {"headers": headers, "method": "POST" if body else "GET"}
    if body and "form" in body:
        kwargs["data"] = body
    elif body:
        kwargs["json"] = body
    with app.test_request_context("/x", **kwargs):
        assert wants_page() is expected


def test_plural_never_says_1_items():
    assert (plural(1, "item"), plural(2, "item"), plural(0, "item")) == (
        "1 item",
        "2 items",
        "0 items",
    )


# -- cart links -----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["qty=abc", "qty=0", "qty=1&qty=2", "qty=99999999999"])
def test_a_cart_link_with_a_bad_qty_lands_on_next_with_a_flash_and_changes_nothing(
    client, cart_store, query
):
    add(client, "sku-3", 1)
    before = raw_dump(cart_store, CartKey(guest_id_of(client)))
    response = client.get(f"/cart/add/sku-1?{query}&next=/products/1", headers=NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/products/1")
    assert response.mimetype != "application/json"
    assert flashes(client) == [("cart-error", "That quantity is not valid: use a whole number.")]
    assert raw_dump(cart_store, CartKey(guest_id_of(client))) == before
    fetched = client.get(f"/cart/add/sku-1?{query}", headers=FETCH)  # fetch keeps JSON
    assert fetched.status_code == 400 and fetched.json["error"]["code"] == "invalid_quantity"


def test_an_old_browser_that_prefers_html_lands_with_a_flash_too(client):
    response = client.get("/cart/add/sku-1?qty=abc", headers={"Accept": BROWSER_ACCEPT})
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    assert [category for category, _ in flashes(client)] == ["cart-error"]
    assert lines(client) == {}


@pytest.mark.parametrize("app_config", [{"CART_LINK_REDIRECT": "/shop"}])
def test_a_failed_link_without_next_lands_on_cart_link_redirect(client):
    response = client.get("/cart/link/sku-1:two", headers=NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/shop")


def test_a_failed_link_whose_next_is_itself_does_not_loop(client):
    url = "/cart/add/sku-1?qty=abc&next=/cart/add/sku-1"
    response = client.get(url, headers=NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/")


def test_a_tampered_or_expired_signed_link_lands_on_the_shop_with_a_flash(
    app, carts, client, cart_store
):
    add(client, "sku-3", 1)
    with app.test_request_context("/"):
        good = carts.cart_link({"sku-1": 2}).split("localhost", 1)[1]
        expiring = carts.cart_link({"sku-1": 2}, max_age=1).split("localhost", 1)[1]
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    response = client.get(tampered, headers=NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    time.sleep(2.1)
    response = client.get(expiring, headers=NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    assert flashes(client) == [
        ("cart-error", "This link is not valid. It may have been cut short or changed."),
        ("cart-error", "This link has expired."),
    ]
    assert stored(cart_store, guest_id_of(client)) == {"sku-3": 1}


def test_a_tampered_recovery_link_lands_on_the_shop_with_a_flash(client):
    response = client.get("/cart/recover/not-a-token.at-all", headers=NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    assert flashes(client) == [
        ("cart-error", "This link is not valid. It may have been cut short or changed.")
    ]
    fetched = client.get("/cart/recover/not-a-token.at-all", headers=FETCH)
    assert fetched.status_code == 400 and fetched.json["error"]["code"] == "invalid_link"


def test_a_link_that_is_not_a_click_in_a_frame_shows_a_page_and_flashes_nothing(client):
    frame = {
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "iframe",
        "Sec-Fetch-Site": "cross-site",
    }
    html = assert_page(client.get("/cart/add/sku-1", headers=frame), 403)
    assert "open it in your browser" in html
    assert flashes(client) == [] and lines(client) == {}


# -- what a link says it did -----------------------------------------------------------------


def test_a_link_flashes_what_it_added_by_the_loaders_names(client):
    client.get("/cart/add/sku-1?qty=2", headers=NAVIGATE)
    client.get("/cart/link/sku-2:1,sku-3:3", headers=NAVIGATE)
    client.get("/cart/link/sku-1:1,sku-2:1,sku-3:1,free:1", headers=NAVIGATE)
    assert flashes(client) == [
        ("cart-success", "Added 2 \u00d7 Mug to your cart."),
        ("cart-success", "Added 1 \u00d7 Spoon and 3 \u00d7 Plate to your cart."),
        ("cart-success", "Added 4 items to your cart."),
    ]


def test_a_signed_link_flashes_what_it_added(app, carts, client):
    with app.test_request_context("/"):
        path = carts.cart_link({"sku-2": 1}).split("localhost", 1)[1]
    client.get(path, headers=NAVIGATE)
    assert flashes(client) == [("cart-success", "Added 1 \u00d7 Spoon to your cart.")]


def test_unknown_ids_in_a_link_are_counted_never_echoed(client, products):
    evil = "Call-0800-FAKE-for-a-refund"
    response = client.get(f"/cart/link/sku-1:1,{evil}:1,{evil}-2:1", headers=NAVIGATE)
    assert response.status_code == 303
    shown = flashes(client)
    assert shown == [
        ("cart-success", "Added 1 \u00d7 Mug to your cart."),
        ("cart-warning", "2 products in this link are no longer available."),
    ]
    page = client.get(f"/cart/add/{evil}")  # the confirmation page names no unknown id
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Add 1 \u00d7 a product to your cart?" in html
    assert html.count(evil) == 1 and f'action="/cart/add/{evil}"' in html  # its own URL
    client.get(f"/cart/add/{evil}", headers=NAVIGATE)
    assert flashes(client)[-1] == ("cart-warning", "1 product in this link is no longer available.")


@pytest.mark.parametrize("app_config", [{"CART_MAX_LINE_QUANTITY": 5}])
def test_a_clamped_link_says_so_in_shopper_words(client):
    client.get("/cart/add/sku-2?qty=9", headers=NAVIGATE)
    assert flashes(client) == [
        ("cart-success", "Added 5 \u00d7 Spoon to your cart."),
        ("cart-warning", "You can have at most 5 of one item: your cart has 5 \u00d7 Spoon."),
    ]


# -- form posts without JavaScript ------------------------------------------------------------


def test_a_form_over_the_cap_flashes_shopper_words(client):
    response = client.post(
        "/cart/items",
        data={"product_id": "sku-2", "quantity": "1000", "next": "/cart-page"},
        headers=FORM_POST,
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/cart-page")
    assert flashes(client) == [("cart-error", "You can have at most 999 of one item.")]


def test_a_form_over_the_stock_names_the_product_not_its_id(client):
    client.post("/cart/items", data={"product_id": "limited", "quantity": "5"}, headers=FORM_POST)
    assert flashes(client) == [("cart-error", "Only 3 of Rare in stock.")]


def test_a_cross_site_form_post_gets_a_page_not_json_and_changes_nothing(client, cart_store):
    add(client, "sku-1", 1)
    before = raw_dump(cart_store, CartKey(guest_id_of(client)))
    headers = {**FORM_POST, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    response = client.post("/cart/items", data={"product_id": "sku-1"}, headers=headers)
    html = assert_page(response, 403)
    assert "another site" in html and "evil.example" not in html
    assert flashes(client) == []
    assert raw_dump(cart_store, CartKey(guest_id_of(client))) == before
    from_fetch = {**FETCH, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    fetched = client.post("/cart/items", json={"product_id": "sku-1"}, headers=from_fetch)
    assert fetched.status_code == 403 and fetched.json["error"]["code"] == "cross_site"


def test_a_csrf_failure_goes_back_to_the_same_site_form_with_a_flash(app, client, cart_store):
    CSRFProtect(app)
    form = {"product_id": "sku-1"}
    back = {**FORM_POST, "Referer": "http://localhost/products/1"}
    response = client.post("/cart/items", data=form, headers=back)
    assert (response.status_code, response.headers["Location"]) == (
        303,
        "http://localhost/products/1",
    )
    assert flashes(client) == [
        (
            "cart-error",
            "Your cart was not changed because the page had expired. Please try again.",
        )
    ]
    elsewhere = {**FORM_POST, "Referer": "https://evil.example/"}
    assert_page(client.post("/cart/items", data=form, headers=elsewhere), 403)
    assert_page(client.post("/cart/items", data=form, headers=FORM_POST), 403)
    assert guest_id_of(client) is None
    fetched = client.post("/cart/items", json=form, headers=FETCH)
    assert fetched.status_code == 403 and fetched.json["error"]["code"] == "csrf_failed"


# -- the store down -------------------------------------------------------------------------


@pytest.fixture
def down(store_kind, products, tmp_path):
    """The test shop on a store that refuses every connection (CART_HANDLE_STORE_ERRORS)."""
    app, _ = build_app(broken_store(store_kind, tmp_path), products, CART_HANDLE_STORE_ERRORS=True)

    @app.post("/wish/<product_id>")
    def wish(product_id: str) -> str:
        current_cart.add_item(product_id, 1)  # a shop page that changes the cart
        return "added"

    return app


def test_a_form_add_while_the_store_is_down_lands_with_a_flash(down):
    client = down.test_client()
    response = client.post(
        "/cart/items", data={"product_id": "sku-1", "next": "/products/1"}, headers=FORM_POST
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/products/1")
    assert flashes(client) == [
        ("cart-error", "Your cart is unavailable right now. Please try again in a moment.")
    ]
    fetched = client.post("/cart/items", json={"product_id": "sku-1"}, headers=FETCH)
    assert fetched.status_code == 503 and fetched.json["error"]["code"] == "store_unavailable"


def test_a_link_while_the_store_is_down_lands_with_a_flash(down):
    client = down.test_client()
    response = client.get("/cart/add/sku-1", headers=NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    assert flashes(client)[-1][0] == "cart-error"


def test_a_shop_page_while_the_store_is_down_is_an_html_503_page_for_a_browser(down):
    client = down.test_client()
    html = assert_page(client.post("/wish/sku-1", headers=FORM_POST), 503)
    assert "Your cart is unavailable right now" in html
    fetched = client.post("/wish/sku-1", headers=FETCH)
    assert fetched.status_code == 503 and fetched.json["error"]["code"] == "store_unavailable"


# -- templates a shop overrides ---------------------------------------------------------------


def test_a_shops_own_templates_win(app, client, tmp_path):
    folder = tmp_path / "flask_cart"
    folder.mkdir()
    (folder / "layout.html").write_text(
        "<!doctype html><title>{% block title %}{% endblock %}</title>"
        "<p>THE SHOP'S LAYOUT</p>{% block content %}{% endblock %}"
    )
    app.template_folder = str(tmp_path)
    page = client.get("/cart/add/sku-1?qty=2&next=/x")
    html = page.get_data(as_text=True)
    assert "THE SHOP'S LAYOUT" in html and "Add 2 \u00d7 Mug to your cart?" in html
    assert 'action="/cart/add/sku-1?qty=2&amp;next=/x"' in html
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_a_shop_layout_that_fails_still_shows_the_503_page(store_kind, products, tmp_path):
    app, _ = build_app(broken_store(store_kind, tmp_path), products, CART_HANDLE_STORE_ERRORS=True)
    folder = tmp_path / "templates" / "flask_cart"
    folder.mkdir(parents=True)
    (folder / "layout.html").write_text("{{ current_cart.add_item('sku-1', 1) }}")
    app.template_folder = str(tmp_path / "templates")

    @app.get("/wish")
    def wish() -> str:
        raise StoreUnavailable("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    html = assert_page(app.test_client().get("/wish", headers=NAVIGATE), 503)
    assert "Your cart is unavailable right now" in html


# -- recovery ---------------------------------------------------------------------------------


def test_a_recovery_lands_on_the_shop_and_names_the_lines_it_could_not_bring_back(
    app, carts, products
):
    from tests.flask.confirming import open_and_confirm
    from tests.flask.test_flask_recovery import abandoned_guest_cart, url_for_cart

    products["sold-out-later"] = {"unit_cost": "5", "name": "Lamp", "stock": 4}
    guest = abandoned_guest_cart(app, {"sku-1": 2, "limited": 3, "sold-out-later": 1})
    products["limited"]["stock"] = 1  # sold meanwhile
    products["sold-out-later"]["stock"] = 0
    browser = app.test_client()
    path = url_for_cart(app, carts, guest) + "?next=/cart-page"
    response = open_and_confirm(browser, path, **NAVIGATE)
    assert (response.status_code, response.headers["Location"]) == (303, "/cart-page")
    assert flashes(browser) == [
        ("cart-success", "Your saved cart is back."),
        ("cart-warning", "Some items could not be brought back: Rare (1 of 3), Lamp."),
    ]
    assert lines(browser) == {"sku-1": 2, "limited": 1}
