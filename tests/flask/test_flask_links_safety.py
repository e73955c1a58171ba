"""Links and recovery safe against mail scanners, scripts and half-done recoveries, on every
store: what a GET changes (nothing, for a recovery), what a POST needs (the confirmation
page's token), and what a recovery that cannot finish leaves (the saved cart)."""

from __future__ import annotations

import html
import math
import re
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from flask import Flask, redirect, request
from flask_login import current_user

from flask_cart import CartManager
from flask_cart.recovery import ANOTHER_ACCOUNT, ELSEWHERE
from flask_cart.stores.base import CartKey, CartStore
from flask_cart.tokens import MAX_TOKEN_LENGTH
from tests.flask.confirming import CLICKED, confirmation_form, open_and_confirm, press_button
from tests.flask.shop import add, build_app, guest_id_of, stored
from tests.flask.test_flask_recovery import abandoned_guest_cart, flashes, login, url_for_cart

NO_CLICK = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def lines(client: Any, instance: str = "cart") -> dict[str, int]:
    items = client.get(f"/cart?instance={instance}").json["items"]
    return {item["product_id"]: item["quantity"] for item in items}


def page_text(response: Any) -> str:
    """The page's words, without its tags and attributes."""
    return html.unescape(re.sub(r"<[^>]*>", " ", response.get_data(as_text=True)))


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"CART_STORE_TIMEOUT": 30}


@pytest.fixture
def usual_login_view(app: Flask) -> str:
    """Flask-Login's usual login view: a logged-in user is sent straight on to ``next``."""

    @app.route("/signin")
    def signin() -> Any:
        if current_user.is_authenticated:
            return redirect(request.args.get("next") or "/")
        return "sign in here"

    app.login_manager.login_view = "signin"  # type: ignore[attr-defined]
    return "/signin"


# -- 1. another customer's link ------------------------------------------------------------


def test_another_customers_recovery_link_lands_on_the_shop_without_a_redirect_loop(
    app: Flask, carts: CartManager, cart_store: CartStore, usual_login_view: str
) -> None:
    owner = app.test_client()
    login(owner, "42")
    add(owner, "sku-1", 2)
    path = url_for_cart(app, carts, "customer:42")
    browser = app.test_client()
    login(browser, "7")
    hops = []
    response = browser.get(path, headers=CLICKED)
    while response.status_code in (302, 303) and len(hops) < 10:
        hops.append(response.headers["Location"])
        response = browser.get(response.headers["Location"], headers=CLICKED)
    assert hops == ["/"], hops
    assert flashes(browser) == [("cart-warning", ANOTHER_ACCOUNT)]
    assert stored(cart_store, "customer:42") == {"sku-1": 2}
    assert stored(cart_store, "customer:7") == {}


def test_a_logged_out_customer_logs_in_and_comes_back_to_the_cart(
    app: Flask, carts: CartManager, usual_login_view: str
) -> None:
    owner = app.test_client()
    login(owner, "42")
    add(owner, "sku-1", 2)
    path = url_for_cart(app, carts, "customer:42")
    browser = app.test_client()
    response = browser.get(path, headers=CLICKED)
    assert urlsplit(response.headers["Location"]).path == usual_login_view
    login(browser, "42")
    back = browser.get(response.headers["Location"], headers=CLICKED)  # the login view
    assert back.status_code == 302 and back.headers["Location"].endswith(path)
    landed = browser.get(path, headers=CLICKED)
    assert (landed.status_code, landed.headers["Location"]) == (303, "/")
    assert lines(browser) == {"sku-1": 2}


# -- 2. a mail scanner ---------------------------------------------------------------------


@pytest.mark.parametrize("headers", [CLICKED, {}, dict(NO_CLICK, **{"Sec-Fetch-Site": "none"})])
def test_a_mail_scanner_opening_a_recovery_link_takes_nothing(
    app: Flask,
    carts: CartManager,
    cart_store: CartStore,
    products: dict[str, Any],
    headers: dict[str, str],
) -> None:
    """A scanner's cookie-less browser, even one that says a person clicked, gets the page
    listing the lines (names and quantities at today's prices) and changes nothing."""
    guest = abandoned_guest_cart(app, {"sku-1": 2, "sku-2": 1})
    products["sku-1"]["unit_cost"] = "11.49"  # the price rose since
    scanner = app.test_client()
    page = scanner.get(url_for_cart(app, carts, guest), headers=headers)
    assert page.status_code == 200 and confirmation_form(page) is not None
    text = page_text(page)
    times = "\N{MULTIPLICATION SIGN}"
    assert f"2 {times} Mug (11.49)" in text and f"1 {times} Spoon (4.50)" in text
    assert "3 items" in text
    assert stored(cart_store, guest) == {"sku-1": 2, "sku-2": 1}
    assert not cart_store.load(CartKey(guest)).sealed
    assert lines(scanner) == {}
    assert guest_id_of(scanner) is None  # no cart was made for the scanner either


def test_the_owner_is_told_when_the_cart_was_opened_in_another_browser(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    owner = app.test_client()
    add(owner, "sku-1", 2)
    guest = guest_id_of(owner)
    assert guest is not None
    path = url_for_cart(app, carts, guest)
    response = owner.get(path, headers=CLICKED)  # its own browser: here it is
    assert response.status_code == 303
    assert flashes(owner) == [("cart-info", "Your cart is here.")]
    phone = app.test_client()  # the owner's other browser confirms
    assert open_and_confirm(phone, path).status_code == 303
    assert lines(phone) == {"sku-1": 2}
    with owner.session_transaction() as session:
        session.pop("_flashes", None)
    response = owner.get(path, headers=CLICKED)
    assert response.status_code == 303
    assert flashes(owner) == [("cart-warning", ELSEWHERE)]
    assert stored(cart_store, guest_id_of(phone) or "") == {"sku-1": 2}  # once, not twice


# -- 3. a recovery that cannot finish ------------------------------------------------------


def test_a_recovery_into_a_cart_being_merged_at_a_login_leaves_the_saved_cart_as_it_was(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    add(browser, "sku-2", 1)
    page = browser.get(path, headers=CLICKED)
    own = guest_id_of(browser)
    assert own is not None
    cart_store.seal(CartKey(own))  # its login merge is running
    for _ in range(2):
        response = press_button(browser, page, Accept="application/json")
        assert response.status_code == 409, response.data
        saved = cart_store.load(CartKey(guest))
        assert not saved.sealed and stored(cart_store, guest) == {"sku-1": 2}
        assert not any(m.startswith("recover:") for m in saved.merged)
    login(browser, "42")  # the login merge finishes: the retry goes into the customer cart
    assert open_and_confirm(browser, path).status_code == 303
    assert stored(cart_store, "customer:42") == {"sku-1": 2, "sku-2": 1}
    assert not cart_store.load(CartKey(guest)).exists


def test_a_recovery_cut_off_by_a_login_half_way_is_finished_by_the_retry(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    """The browser's cart is sealed between this browser's check and its merge: the saved
    cart is claimed and sealed, the answer is 409; after the login, the retry finishes."""
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    add(browser, "sku-2", 1)
    page = browser.get(path, headers=CLICKED)
    own = guest_id_of(browser)
    assert own is not None

    def sealed_meanwhile(carts: Any, cart: Any) -> None:
        cart_store.seal(CartKey(own))

    with mock.patch("flask_cart.recovery._ready", sealed_meanwhile):
        response = press_button(browser, page, Accept="application/json")
    assert response.status_code == 409
    assert cart_store.load(CartKey(guest)).sealed  # claimed by this browser, not lost
    other = app.test_client()
    assert open_and_confirm(other, path).status_code == 303  # not another browser's now
    assert lines(other) == {}
    login(browser, "42")
    again = browser.get(path, headers=CLICKED)
    assert confirmation_form(again) is not None  # still this browser's to finish
    assert press_button(browser, again).status_code == 303
    assert stored(cart_store, "customer:42") == {"sku-1": 2, "sku-2": 1}
    assert not cart_store.load(CartKey(guest)).exists


def test_a_recovery_into_a_cart_whose_merge_was_cut_off_long_ago_gets_a_new_cart(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    add(browser, "sku-2", 1)
    own = guest_id_of(browser)
    assert own is not None
    cart_store.seal(CartKey(own))  # a login merge that never finished
    with mock.patch("flask_cart.request_cart.MERGE_GRACE_SECONDS", -1):
        assert open_and_confirm(browser, path).status_code == 303
    assert guest_id_of(browser) not in (None, own)
    assert lines(browser) == {"sku-1": 2}
    assert not cart_store.load(CartKey(guest)).exists


# -- 4. navigations no person started, posts without the page's token --------------------


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_a_scripts_navigation_to_a_cart_link_adds_nothing(
    app: Flask, client: Any, site: str
) -> None:
    response = client.get(
        "/cart/add/sku-1?qty=3", headers=dict(NO_CLICK, **{"Sec-Fetch-Site": site})
    )
    assert response.status_code == 200 and confirmation_form(response) is not None
    assert lines(client) == {}
    assert press_button(client, response).status_code == 303  # a person's click adds
    assert lines(client) == {"sku-1": 3}


def test_a_navigation_from_the_shops_own_pages_adds_as_before(client: Any) -> None:
    headers = dict(NO_CLICK, **{"Sec-Fetch-Site": "same-origin"})
    assert client.get("/cart/add/sku-1?qty=3", headers=headers).status_code == 303
    assert lines(client) == {"sku-1": 3}


def test_a_signed_replacing_link_opened_by_a_script_keeps_the_cart(
    app: Flask, carts: CartManager, client: Any
) -> None:
    add(client, "sku-1", 2)
    with app.test_request_context("/"):
        url = carts.cart_link({"sku-2": 1}, replace=True)
    path = urlsplit(url).path
    headers = dict(NO_CLICK, **{"Sec-Fetch-Site": "cross-site"})
    page = client.get(path, headers=headers)
    assert page.status_code == 200 and "Replace your cart" in page_text(page)
    assert lines(client) == {"sku-1": 2}
    assert client.post(path).status_code == 403  # a form another site submits
    assert lines(client) == {"sku-1": 2}
    assert press_button(client, page).status_code == 303
    assert lines(client) == {"sku-2": 1}


@pytest.mark.parametrize("path", ["/cart/add/sku-1?qty=2", "/cart/link/sku-1:2,sku-3:1"])
def test_a_post_without_origin_sec_fetch_or_the_pages_token_adds_nothing(
    client: Any, cart_store: CartStore, path: str
) -> None:
    add(client, "sku-2", 1)
    form = client.post(path, data={"next": "/x"})  # another site's form: the page, to confirm
    assert form.status_code == 403 and "Your cart was not changed" in page_text(form)
    assert confirmation_form(form) is not None
    script = client.post(path, headers={"Accept": "application/json"})
    assert script.status_code == 403
    assert script.json["error"]["code"] == "confirmation_required"
    assert lines(client) == {"sku-2": 1}


def test_a_recovery_post_without_the_pages_token_takes_nothing(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    other_page = browser.get(url_for_cart(app, carts, guest, instance="cart") + "?next=/x")
    fields = (confirmation_form(other_page) or ("", {}))[1]  # another URL's token
    for data in ({"next": "/x"}, fields):
        refused = browser.post(path, data=data)
        assert refused.status_code == 403 and confirmation_form(refused) is not None
        assert "Your cart was not changed" in page_text(refused)
    script = browser.post(path, headers={"Accept": "application/json"})
    assert script.status_code == 403
    assert script.json["error"]["code"] == "confirmation_required"
    assert stored(cart_store, guest) == {"sku-1": 2}
    assert not cart_store.load(CartKey(guest)).sealed
    assert lines(browser) == {}


# -- 5. smaller ----------------------------------------------------------------------------


@pytest.mark.parametrize("max_age", [math.nan, math.inf, -math.inf, -1, 0, True, 1e300])
def test_links_that_would_never_expire_are_refused_at_creation(
    app: Flask, carts: CartManager, max_age: Any
) -> None:
    with app.test_request_context("/"):
        with pytest.raises(ValueError, match="max_age"):
            carts.cart_link({"sku-1": 1}, max_age=max_age)
        with pytest.raises(ValueError, match="max_age"):
            carts.recovery_url("customer:42", max_age=max_age)


def test_cart_link_refuses_a_link_longer_than_its_route_reads(
    app: Flask, carts: CartManager, client: Any, products: dict[str, Any]
) -> None:
    """The route reads tokens of at most MAX_TOKEN_LENGTH characters: cart_link raises
    rather than make a link that answers 400 to every shopper."""
    many = {f"{'p' * 100}-{n:03d}": 1 for n in range(100)}
    with app.test_request_context("/"), pytest.raises(ValueError, match="at most"):
        carts.cart_link(many)
    fits: dict[str, int] = {}
    with app.test_request_context("/"):
        for n in range(100):
            product_id = f"{'q' * 20}-{n:03d}"
            try:
                url = carts.cart_link({**fits, product_id: 1})
            except ValueError:
                break
            fits[product_id] = 1
            longest = url
    token = urlsplit(longest).path.rsplit("/", 1)[1]
    assert MAX_TOKEN_LENGTH - 100 < len(token) <= MAX_TOKEN_LENGTH
    for product_id in fits:
        products[product_id] = {"unit_cost": "1", "name": "Pin"}
    response = client.get(urlsplit(longest).path, headers=CLICKED)
    assert response.status_code == 303
    assert (
        client.get(urlsplit(longest).path + "x", headers={"Accept": "application/json"}).status_code
        == 400
    )


MOUNTED = {"SCRIPT_NAME": "/shop"}


def test_recovery_under_a_mount_path_keeps_it_in_its_url_page_and_redirects(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    owner = app.test_client()
    response = owner.post(
        "/cart/items", json={"product_id": "sku-1", "quantity": 2}, environ_overrides=MOUNTED
    )
    assert response.status_code == 200
    guest = guest_id_of(owner)
    assert guest is not None
    with app.test_request_context("/", environ_overrides=MOUNTED):
        url = carts.recovery_url(guest)
    path = urlsplit(url).path
    assert path.startswith("/shop/cart/recover/")
    browser = app.test_client()
    page = browser.get(path[len("/shop") :], environ_overrides=MOUNTED, headers=CLICKED)
    form = confirmation_form(page)
    assert form is not None and form[0] == path
    done = browser.post(form[0][len("/shop") :], data=form[1], environ_overrides=MOUNTED)
    assert (done.status_code, done.headers["Location"]) == (303, "/shop/")
    assert stored(cart_store, guest_id_of(browser) or "") == {"sku-1": 2}


def test_unknown_product_ids_are_never_echoed(client: Any) -> None:
    evil = "Call-0800-FAKE-SUPPORT-now"
    page = client.get(f"/cart/link/{evil}:1,sku-1:1")
    assert page.status_code == 200 and evil not in page_text(page)
    assert evil not in page_text(client.get(f"/cart/add/{evil}"))
    done = press_button(client, page)
    assert done.status_code == 303
    with client.session_transaction() as session:
        assert evil not in str(session.get("_flashes"))
    script = client.get(f"/cart/add/{evil}?qty=x", headers={"Accept": "application/json"})
    assert script.status_code == 400 and evil not in script.get_data(as_text=True)
    assert lines(client) == {"sku-1": 1}


def test_recovery_urls_made_outside_a_request_keep_the_application_root(
    cart_store: CartStore, products: dict[str, Any]
) -> None:
    """``flask cart abandoned`` has no request: SERVER_NAME and APPLICATION_ROOT say where
    the shop is mounted."""
    app, carts = build_app(
        cart_store,
        products,
        SERVER_NAME="shop.example",
        APPLICATION_ROOT="/shop",
        PREFERRED_URL_SCHEME="https",
        CART_STORE_TIMEOUT=30,
    )
    with app.app_context():
        url = carts.recovery_url("customer:42")
        link = carts.cart_link({"sku-1": 1})
    assert url.startswith("https://shop.example/shop/cart/recover/")
    assert link.startswith("https://shop.example/shop/cart/signed/")
