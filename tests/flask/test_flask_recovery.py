"""Recovery links on every store: ``carts.recovery_url`` and ``GET /cart/recover/<token>``."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, has_request_context
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.wrappers import Request

from flask_cart import CartManager, InvalidInput, InvalidInstance, signals
from flask_cart.recovery import ANOTHER_ACCOUNT
from flask_cart.stores.base import CartKey, CartStore
from flask_cart.tokens import make_token, read_token
from tests.flask.confirming import open_and_confirm, press_button
from tests.flask.shop import add, build_app, guest_id_of, stored

WANTS_JSON = {"Accept": "application/json"}
GUEST = "0b6f1c1e-8a4e-4c43-9a8e-2f0b5d5e7a11"
WEEK = 7 * 86400


def test_recovery_url_outside_a_request_uses_server_name(
    cart_store: CartStore, products: dict[str, Any]
) -> None:
    app, carts = build_app(
        cart_store, products, SERVER_NAME="shop.example", PREFERRED_URL_SCHEME="https"
    )
    with app.app_context():  # as in the CLI: no request
        assert not has_request_context()
        url = carts.recovery_url(GUEST)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "shop.example")
    assert parts.path.startswith("/cart/recover/")


def test_recovery_url_without_server_name_says_so(
    cart_store: CartStore, products: dict[str, Any]
) -> None:
    app, carts = build_app(cart_store, products)
    with app.app_context(), pytest.raises(RuntimeError, match="SERVER_NAME"):
        carts.recovery_url(GUEST)


def test_recovery_url_inside_a_request_uses_its_host(app: Flask, carts: CartManager) -> None:
    with app.test_request_context("/", base_url="http://shop.test:8080"):
        url = carts.recovery_url("customer:42", instance="wishlist")
    assert url.startswith("http://shop.test:8080/cart/recover/")


def test_recovery_url_says_whose_cart(app: Flask, carts: CartManager) -> None:
    with app.test_request_context("/"):
        guest = carts.recovery_url(GUEST).rsplit("/", 1)[1]
        customer = carts.recovery_url("customer:a:b", instance="wishlist").rsplit("/", 1)[1]
        assert read_token(app, "recover", guest) == {"guest": GUEST, "instance": "cart"}
        assert read_token(app, "recover", customer) == {"customer": "a:b", "instance": "wishlist"}


@pytest.mark.parametrize("identifier", ["nobody", "customer:", GUEST.upper(), "", 42])
def test_recovery_url_refuses_what_is_no_cart_identifier(
    app: Flask, carts: CartManager, identifier: Any
) -> None:
    with app.test_request_context("/"), pytest.raises(InvalidInput):
        carts.recovery_url(identifier)


def test_recovery_url_refuses_an_unknown_instance(app: Flask, carts: CartManager) -> None:
    with app.test_request_context("/"), pytest.raises(InvalidInstance):
        carts.recovery_url(GUEST, instance="basket")


def test_recovery_url_names_a_bad_cart_before_a_bad_max_age_or_a_missing_host(
    cart_store: CartStore, products: dict[str, Any]
) -> None:
    """The cart's own faults come first: an unknown instance, then an identifier no link
    can name, then max_age, then the missing SERVER_NAME."""
    app, carts = build_app(cart_store, products)
    with app.app_context():  # no request, no SERVER_NAME
        with pytest.raises(InvalidInstance):
            carts.recovery_url("nobody", instance="basket", max_age=0)
        with pytest.raises(InvalidInput):
            carts.recovery_url("nobody", max_age=0)
        with pytest.raises(ValueError, match="max_age"):
            carts.recovery_url(GUEST, max_age=0)
        with pytest.raises(RuntimeError, match="SERVER_NAME"):
            carts.recovery_url(GUEST)


# -- opening a recovery link -------------------------------------------------------------------

NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none"}


def url_for_cart(app: Flask, carts: CartManager, identifier: str, **kwargs: Any) -> str:
    """The path (and query) of a recovery URL, as a browser opens it."""
    with app.test_request_context("/"):
        url = carts.recovery_url(identifier, **kwargs)
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def open_link(client: Any, path: str, **headers: str) -> Any:
    """Open the link as a person does: a click, then the confirmation page's button."""
    return open_and_confirm(client, path, **(headers or NAVIGATE))


def quantities(client: Any, instance: str = "cart") -> dict[str, int]:
    body = client.get(f"/cart?instance={instance}").json
    return {item["product_id"]: item["quantity"] for item in body["items"]}


def flashes(client: Any) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


def abandoned_guest_cart(app: Flask, items: dict[str, int], instance: str = "cart") -> str:
    """A guest cart made in a browser of its own (then left); returns its identifier."""
    browser = app.test_client()
    for product_id, quantity in items.items():
        response = browser.post(
            f"/cart/items?instance={instance}",
            json={"product_id": product_id, "quantity": quantity},
        )
        assert response.status_code == 200, response.data
    guest = guest_id_of(browser)
    assert guest is not None
    return guest


def login(client: Any, user_id: str = "42") -> None:
    assert client.post(f"/login/{user_id}").status_code == 200


@pytest.fixture
def recovered() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Flask, **kwargs: Any) -> None:
        seen.append(kwargs)

    signals.cart_recovered.connect(receiver)
    yield seen
    signals.cart_recovered.disconnect(receiver)


def test_a_guest_cart_becomes_an_empty_browsers_cart(
    app: Flask, carts: CartManager, cart_store: CartStore, recovered: list[dict[str, Any]]
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2, "sku-2": 1})
    browser = app.test_client()
    response = open_link(browser, url_for_cart(app, carts, guest))
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert quantities(browser) == {"sku-1": 2, "sku-2": 1}
    assert not cart_store.load(CartKey(guest)).exists
    assert guest_id_of(browser) not in (None, guest)  # the browser's own guest id
    assert flashes(browser) == [("cart-success", "Your saved cart is back.")]
    assert len(recovered) == 1
    assert recovered[0]["identifier"] == guest and recovered[0]["instance"] == "cart"
    assert recovered[0]["moved"] == {"sku-1": 2, "sku-2": 1}
    assert recovered[0]["cart"].identifier == guest_id_of(browser)


EXPECTED = {
    "sum": {"sku-1": 5, "sku-2": 1, "sku-3": 1},
    "max": {"sku-1": 3, "sku-2": 1, "sku-3": 1},
    "guest": {"sku-1": 3, "sku-2": 1, "sku-3": 1},
    "customer": {"sku-1": 2, "sku-2": 1, "sku-3": 1},
}


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_a_guest_cart_is_merged_into_the_browsers_guest_cart(
    cart_store: CartStore, products: dict[str, Any], strategy: str
) -> None:
    """The recovered cart plays the guest's part, the browser's own cart the customer's."""
    app, carts = build_app(cart_store, products, CART_MERGE_STRATEGY=strategy)
    guest = abandoned_guest_cart(app, {"sku-1": 3, "sku-3": 1})
    browser = app.test_client()
    add(browser, "sku-1", 2)
    add(browser, "sku-2", 1)
    own = guest_id_of(browser)
    assert open_link(browser, url_for_cart(app, carts, guest)).status_code == 303
    assert quantities(browser) == EXPECTED[strategy]
    assert guest_id_of(browser) == own
    assert stored(cart_store, own) == EXPECTED[strategy]
    assert not cart_store.load(CartKey(guest)).exists


def test_a_guest_cart_is_merged_into_a_logged_in_customers_cart(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 3, "sku-3": 1})
    browser = app.test_client()
    login(browser)
    add(browser, "sku-1", 2)
    assert open_link(browser, url_for_cart(app, carts, guest)).status_code == 303
    assert stored(cart_store, "customer:42") == {"sku-1": 5, "sku-3": 1}
    assert quantities(browser) == {"sku-1": 5, "sku-3": 1}
    assert not cart_store.load(CartKey(guest)).exists
    assert browser.get_cookie("guest_cart_id") is None


def test_opening_a_link_twice_applies_it_once(
    app: Flask, carts: CartManager, recovered: list[dict[str, Any]]
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    add(browser, "sku-2", 1)
    for _ in range(3):
        assert open_link(browser, path).status_code == 303
    assert quantities(browser) == {"sku-1": 2, "sku-2": 1}
    assert [c for c, _ in flashes(browser)] == ["cart-success"] + ["cart-info"] * 2
    assert len(recovered) == 1
    # Another browser: the cart is gone, which is said, not an error.
    other = app.test_client()
    assert open_link(other, path).status_code == 303
    assert quantities(other) == {}
    assert [c for c, _ in flashes(other)] == ["cart-warning"]


def open_at_once(browsers: list[Any], path: str) -> list[int]:
    """Open `path` in every browser at the same moment (threads); their statuses."""
    barrier = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def run(browser: Any) -> None:
        barrier.wait()
        statuses.append(open_link(browser, path).status_code)

    threads = [threading.Thread(target=run, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_two_browsers_at_once_exactly_one_gets_the_cart(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    for _ in range(3):
        guest = abandoned_guest_cart(app, {"sku-1": 2, "sku-3": 1})
        path = url_for_cart(app, carts, guest)
        browsers = [app.test_client() for _ in range(4)]
        for index, browser in enumerate(browsers[:2]):
            add(browser, "sku-2", index + 1)
        statuses = open_at_once(browsers, path)
        assert statuses == [303] * len(browsers)
        got = [quantities(b) for b in browsers]
        winners = [q for q in got if q.get("sku-1")]
        assert len(winners) == 1, got
        assert winners[0]["sku-1"] == 2 and winners[0]["sku-3"] == 1
        assert sum(q.get("sku-2", 0) for q in got) == 3  # the browsers' own lines stay
        assert not cart_store.load(CartKey(guest)).exists


@pytest.mark.parametrize("fate", ["checked out", "merged at login", "deleted"])
def test_a_cart_no_longer_there_is_a_message(
    app: Flask, carts: CartManager, cart_store: CartStore, fate: str
) -> None:
    owner = app.test_client()
    add(owner, "sku-1", 2)
    guest = guest_id_of(owner)
    assert guest is not None
    path = url_for_cart(app, carts, guest)
    if fate == "checked out":
        assert owner.post("/checkout").status_code == 200
    elif fate == "merged at login":
        login(owner, "7")
    else:
        cart_store.delete(CartKey(guest))
    browser = app.test_client()
    response = open_link(browser, path)
    assert response.status_code == 303
    assert quantities(browser) == {}
    assert [c for c, _ in flashes(browser)] == ["cart-warning"]
    if fate == "merged at login":
        assert stored(cart_store, "customer:7") == {"sku-1": 2}


def test_the_original_browser_opening_its_own_link_keeps_its_cart(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    owner = app.test_client()
    add(owner, "sku-1", 2)
    guest = guest_id_of(owner)
    assert guest is not None
    assert open_link(owner, url_for_cart(app, carts, guest)).status_code == 303
    assert quantities(owner) == {"sku-1": 2}
    assert stored(cart_store, guest) == {"sku-1": 2}


def test_another_instance_is_recovered_into_that_instance(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    guest = abandoned_guest_cart(app, {"sku-2": 1}, instance="wishlist")
    browser = app.test_client()
    add(browser, "sku-1", 1)
    path = url_for_cart(app, carts, guest, instance="wishlist")
    assert open_link(browser, path).status_code == 303
    assert quantities(browser, "wishlist") == {"sku-2": 1}
    assert quantities(browser) == {"sku-1": 1}
    assert not cart_store.load(CartKey(guest, "wishlist")).exists


def test_the_link_lands_on_a_same_site_next_or_cart_link_redirect(
    cart_store: CartStore, products: dict[str, Any]
) -> None:
    app, carts = build_app(cart_store, products, CART_LINK_REDIRECT="/basket")
    guest = abandoned_guest_cart(app, {"sku-1": 1})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    assert open_link(browser, path).headers["Location"] == "/basket"
    assert open_link(browser, path + "?next=/checkout").headers["Location"] == "/checkout"
    evil = open_link(browser, path + "?next=https://evil.example/")
    assert evil.headers["Location"] == "/basket"


# -- a customer's cart -------------------------------------------------------------------------


@pytest.fixture
def login_page(app: Flask) -> str:
    """A login page (Flask-Login's login_view) on the shop."""
    app.add_url_rule("/signin", "signin", lambda: "sign in here")
    app.login_manager.login_view = "signin"  # type: ignore[attr-defined]
    return "/signin"


def test_a_customers_cart_asks_for_that_customers_login_first(
    app: Flask, carts: CartManager, cart_store: CartStore, login_page: str
) -> None:
    device = app.test_client()
    login(device, "42")
    add(device, "sku-1", 2)
    path = url_for_cart(app, carts, "customer:42")
    browser = app.test_client()
    response = open_link(browser, path)
    assert response.status_code in (302, 303)
    location = urlsplit(response.headers["Location"])
    assert location.path == login_page
    assert parse_qs(location.query)["next"][0].endswith(path)
    assert quantities(browser) == {}
    login(browser, "7")  # someone else: the shop, with a message (never the login page)
    again = open_link(browser, path)
    assert (again.status_code, again.headers["Location"]) == (303, "/")
    assert flashes(browser)[-1] == ("cart-warning", ANOTHER_ACCOUNT)
    assert stored(cart_store, "customer:7") == {}
    login(browser, "42")
    landed = open_link(browser, path)
    assert landed.status_code == 303 and landed.headers["Location"] == "/"
    assert quantities(browser) == {"sku-1": 2}
    assert stored(cart_store, "customer:42") == {"sku-1": 2}


def test_a_customers_cart_without_a_login_view_answers_401_or_a_flashed_303(
    app: Flask, carts: CartManager
) -> None:
    path = url_for_cart(app, carts, "customer:42")
    browser = app.test_client()
    response = open_link(browser, path, **{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"})
    assert response.status_code == 403  # fetch() never follows a link
    response = browser.post(path, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "login_required"
    response = open_link(browser, path)  # the browser: the shop, with the message flashed
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert flashes(browser) == [("cart-error", "Log in to see your saved cart.")]


# -- what changes nothing ----------------------------------------------------------------------


def expired_token(app: Flask, data: Any) -> str:
    """A token made an hour ago, valid for a minute."""
    made = time.time() - 3600
    with app.app_context(), mock.patch("flask_cart.tokens.time.time", return_value=made):
        return make_token(app, "recover", data, max_age=60)


def test_bad_tokens_change_nothing(app: Flask, carts: CartManager, cart_store: CartStore) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    path = url_for_cart(app, carts, guest)
    token = path.rsplit("/", 1)[1]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    with app.app_context():
        as_link = make_token(app, "link", {"guest": guest, "instance": "cart"}, 60)
        no_expiry = make_token(app, "recover", ["not", "a", "payload"])
        bad_instance = make_token(app, "recover", {"guest": guest, "instance": "basket"})
    cases = {
        tampered: 400,
        as_link: 400,
        no_expiry: 400,
        bad_instance: 400,
        "x" * 5000: 400,
        "%00": 400,
        expired_token(app, {"guest": guest, "instance": "cart"}): 410,
    }
    browser = app.test_client()
    for bad, status in cases.items():
        response = browser.get(f"/cart/recover/{bad}", headers={"Accept": "application/json"})
        assert response.status_code == status, (bad, response.data)
        assert "error" in response.json
        page = open_link(browser, f"/cart/recover/{bad}")  # a browser: the shop, flashed
        assert (page.status_code, page.headers["Location"]) == (303, "/")
        assert flashes(browser)[-1][0] == "cart-error"
        assert bad not in flashes(browser)[-1][1]
    assert quantities(browser) == {}
    assert stored(cart_store, guest) == {"sku-1": 2}


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_subresource_changes_nothing(
    app: Flask, carts: CartManager, cart_store: CartStore, headers: dict[str, str]
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    browser = app.test_client()
    response = open_link(browser, url_for_cart(app, carts, guest), **headers)
    assert response.status_code == 403
    assert quantities(browser) == {}
    assert stored(cart_store, guest) == {"sku-1": 2}


def test_without_sec_fetch_a_button_asks_first(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    guest = abandoned_guest_cart(app, {"sku-1": 2})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    page = browser.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'method="post"' in page.data
    assert stored(cart_store, guest) == {"sku-1": 2}
    assert quantities(browser) == {}
    assert press_button(browser, page, Origin="http://evil.example").status_code == 403
    assert browser.post(path).status_code == 403  # the page's token is needed
    assert stored(cart_store, guest) == {"sku-1": 2}
    assert press_button(browser, page).status_code == 303
    assert quantities(browser) == {"sku-1": 2}
    assert not cart_store.load(CartKey(guest)).exists


def test_responses_match_the_spec(app: Flask, carts: CartManager, login_page: str) -> None:
    from tests.flask.test_flask_openapi_fuzz import SPEC

    guest = abandoned_guest_cart(app, {"sku-1": 1})
    path = url_for_cart(app, carts, guest)
    browser = app.test_client()
    responses = [
        browser.get(path),  # the confirmation page
        open_link(browser, path, **{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}),
        browser.get("/cart/recover/nonsense", headers=WANTS_JSON),
        browser.get(f"/cart/recover/{expired_token(app, {'guest': guest})}", headers=WANTS_JSON),
        open_link(browser, url_for_cart(app, carts, "customer:42")),
        browser.post(path),  # no confirmation token
        open_link(browser, path),
    ]
    assert [r.status_code for r in responses] == [200, 403, 400, 410, 303, 403, 303]
    for response in responses:
        environ = dict(response.request.environ, CONTENT_LENGTH="0")
        environ["wsgi.input"] = io.BytesIO()
        SPEC.validate_response(
            WerkzeugOpenAPIRequest(Request(environ)), WerkzeugOpenAPIResponse(response)
        )
