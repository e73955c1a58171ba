"""Cart links on every store: ``/cart/add/<id>``, ``/cart/link/<id>:<qty>,...`` and the
signed links of ``carts.cart_link``: what they add, clamp, refuse and never do."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask_wtf.csrf import CSRFProtect

from flask_cart import signals
from flask_cart.config import DEFAULTS, Settings
from flask_cart.stores.base import CartKey
from tests.flask.confirming import confirmation_form, press_button
from tests.flask.shop import add, guest_id_of, stored

NAVIGATE = {
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1",
}


def follow(client: Any, url: str, **headers: str) -> Any:
    """Open `url` as a link clicked in the browser (a top-level navigation)."""
    return client.get(url, headers={**NAVIGATE, **headers})


def lines(client: Any, instance: str = "cart") -> dict[str, int]:
    items = client.get(f"/cart?instance={instance}").json["items"]
    return {item["product_id"]: item["quantity"] for item in items}


def flashes(client: Any) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


@contextmanager
def received(app: Any, signal: Any) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    with signal.connected_to(receiver, app):
        yield calls


# -- /cart/add/<product_id> -------------------------------------------------------------------


def test_an_add_link_adds_and_answers_303_to_the_link_redirect(app, client):
    with received(app, signals.cart_link_followed) as followed:
        response = follow(client, "/cart/add/sku-1?qty=2")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert lines(client) == {"sku-1": 2}
    assert followed[0]["added"] == {"sku-1": 2} and followed[0]["warnings"] == []
    assert flashes(client) == [("cart-success", "Added 2 \u00d7 Mug to your cart.")]


def test_qty_defaults_to_one_and_a_second_click_adds_again(client):
    follow(client, "/cart/add/sku-1")
    follow(client, "/cart/add/sku-1")
    assert lines(client) == {"sku-1": 2}


def test_a_link_sends_the_signals_of_the_json_routes(app, client):
    with received(app, signals.cart_item_added) as added:
        follow(client, "/cart/link/sku-1:2,sku-3:1")
    assert [(c["product_id"], c["quantity"]) for c in added] == [("sku-1", 2), ("sku-3", 1)]
    assert added[0]["line"]["quantity"] == 2


def test_a_same_site_next_is_where_the_link_lands(client):
    response = follow(client, "/cart/add/sku-1?next=/products/sku-1")
    assert response.headers["Location"] == "/products/sku-1"
    absolute = follow(client, "/cart/add/sku-1?next=http://localhost/x")
    assert absolute.headers["Location"] == "http://localhost/x"
    for evil in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil"):
        assert follow(client, "/cart/add/sku-1", next=evil).status_code == 303
        response = client.get("/cart/add/sku-1", query_string={"next": evil}, headers=NAVIGATE)
        assert response.headers["Location"] == "/"


@pytest.mark.parametrize("app_config", [{"CART_LINK_REDIRECT": "/cart-page"}])
def test_cart_link_redirect_is_the_default_landing(client):
    assert follow(client, "/cart/add/sku-1").headers["Location"] == "/cart-page"


def test_cart_link_redirect_is_checked_at_init_app():
    config = dict(DEFAULTS)
    assert Settings.from_config(config).link_redirect == "/"
    for bad in ("", "//evil.example", "ftp://x/", "cart", "/a\nb", 3, None):
        with pytest.raises(ValueError, match="CART_LINK_REDIRECT"):
            Settings.from_config({**config, "CART_LINK_REDIRECT": bad})
    good = Settings.from_config({**config, "CART_LINK_REDIRECT": "https://shop.example/cart"})
    assert good.link_redirect == "https://shop.example/cart"


def test_a_link_takes_the_instance(client):
    follow(client, "/cart/add/sku-1?qty=3&instance=wishlist")
    assert lines(client, "wishlist") == {"sku-1": 3} and lines(client) == {}
    assert client.get("/cart/add/sku-1?instance=nope").status_code == 400
    assert follow(client, "/cart/add/sku-1?instance=nope").status_code == 303
    assert flashes(client)[-1] == ("cart-error", "That cart is not available.")


def test_a_product_id_may_hold_a_slash(client, products):
    products["a/b"] = {"unit_cost": "1", "name": "Slash"}
    follow(client, "/cart/add/a%2Fb")
    follow(client, "/cart/add/a/b")
    assert lines(client) == {"a/b": 2}


# -- /cart/link/<id>:<qty>,... -----------------------------------------------------------------


def test_a_list_link_adds_every_product_in_one_change(client, cart_store):
    follow(client, "/cart/add/sku-2")
    before = cart_store.load(CartKey(guest_id_of(client))).version
    follow(client, "/cart/link/sku-1:2,sku-2:1,sku-3:4")
    assert lines(client) == {"sku-2": 2, "sku-1": 2, "sku-3": 4}
    assert cart_store.load(CartKey(guest_id_of(client))).version == before + 1


def test_a_product_id_with_a_colon_splits_at_the_last_one(client, products):
    products["ns:mug"] = {"unit_cost": "2", "name": "Colon"}
    follow(client, "/cart/link/ns:mug:2")
    assert lines(client) == {"ns:mug": 2}


@pytest.mark.parametrize(
    "url",
    [
        "/cart/add/sku-1?qty=0",
        "/cart/add/sku-1?qty=-1",
        "/cart/add/sku-1?qty=1.5",
        "/cart/add/sku-1?qty=abc",
        "/cart/add/sku-1?qty=",
        "/cart/add/sku-1?qty=%2B2",
        "/cart/add/sku-1?qty=%202",
        "/cart/add/sku-1?qty=1e3",
        "/cart/add/sku-1?qty=%D9%A3",  # an Arabic-Indic three: a digit, but not ASCII
        "/cart/add/sku-1?qty=99999999999",
        "/cart/add/sku-1?qty=1&qty=2",
        "/cart/add/" + "x" * 129,
        "/cart/add/sku%01",
        "/cart/link/sku-1",
        "/cart/link/sku-1:",
        "/cart/link/:2",
        "/cart/link/sku-1:2,",
        "/cart/link/sku-1:2,,sku-3:1",
        "/cart/link/sku-1:0",
        "/cart/link/sku-1:two",
        "/cart/link/sku-1:2,sku-1:1",
        "/cart/link/sku-1:2?qty=3",
        "/cart/link/" + ",".join(f"p{i}:1" for i in range(101)),
    ],
)
def test_bad_input_is_a_flashed_303_for_a_browser_a_400_for_a_script_and_changes_nothing(
    app, client, url
):
    follow(client, "/cart/add/sku-3")
    with client.session_transaction() as session:
        session.pop("_flashes", None)
    with received(app, signals.cart_link_followed) as followed:
        response = follow(client, url)
        script = client.get(url)  # no Sec-Fetch-*, no Accept: JSON, no confirmation page
    assert response.status_code == 303, response.data
    assert response.headers["Location"] == "/"
    assert [category for category, _ in flashes(client)] == ["cart-error"]
    assert script.status_code == 400
    assert set(script.json["error"]) == {"code", "message"}
    assert lines(client) == {"sku-3": 1} and followed == []


@pytest.mark.parametrize("app_config", [{"CART_MAX_LINES": 3}])
def test_a_list_link_names_at_most_cart_max_lines_products(client):
    assert client.get("/cart/link/sku-1:1,sku-2:1,sku-3:1,free:1").status_code == 400
    assert follow(client, "/cart/link/sku-1:1,sku-2:1,sku-3:1").status_code == 303


# -- clamping: stock and caps never refuse the whole link ---------------------------------------


def test_stock_clamps_and_the_rest_is_flashed_and_signalled(app, client, products):
    products["broken"] = RuntimeError("the catalogue is down")
    with received(app, signals.cart_link_followed) as followed:
        response = follow(client, "/cart/link/sku-1:2,limited:9,sold-out:1,nope:1,broken:1")
    assert response.status_code == 303
    assert lines(client) == {"sku-1": 2, "limited": 3}
    reasons = {w["product_id"]: w["reason"] for w in followed[0]["warnings"]}
    assert reasons == {
        "limited": "clamped",
        "sold-out": "sold_out",
        "nope": "unknown",
        "broken": "unavailable",
    }
    limited = next(w for w in followed[0]["warnings"] if w["product_id"] == "limited")
    assert (limited["requested"], limited["added"]) == (9, 3)
    assert followed[0]["added"] == {"sku-1": 2, "limited": 3}
    assert flashes(client) == [
        ("cart-success", "Added 2 \u00d7 Mug and 3 \u00d7 Rare to your cart."),
        ("cart-warning", "2 products in this link are no longer available."),
        ("cart-warning", "Only 3 of Rare in stock: your cart has 3."),
        ("cart-warning", "Gone is sold out, so it was not added."),
    ]


def test_stock_counts_what_the_cart_holds_already(app, client):
    follow(client, "/cart/add/limited?qty=2")
    with received(app, signals.cart_link_followed) as followed:
        follow(client, "/cart/add/limited?qty=2")
    assert lines(client) == {"limited": 3}
    assert followed[0]["added"] == {"limited": 1}
    follow(client, "/cart/add/limited")
    assert lines(client) == {"limited": 3}


@pytest.mark.parametrize("app_config", [{"CART_MAX_LINE_QUANTITY": 5, "CART_MAX_LINES": 3}])
def test_the_caps_clamp_instead_of_a_422(app, client):
    follow(client, "/cart/link/sku-2:4,free:1")
    with received(app, signals.cart_link_followed) as followed:
        response = follow(client, "/cart/link/sku-2:4,sku-1:900,sku-3:1")
    assert response.status_code == 303
    assert lines(client) == {"sku-2": 5, "free": 1, "sku-1": 5}
    reasons = {w["product_id"]: w["reason"] for w in followed[0]["warnings"]}
    assert reasons == {"sku-2": "clamped", "sku-1": "clamped", "sku-3": "no_room"}


def test_a_link_of_nothing_available_changes_nothing(app, client, cart_store):
    with received(app, signals.cart_link_followed) as followed:
        response = follow(client, "/cart/link/sold-out:1,nope:2")
    assert response.status_code == 303
    assert guest_id_of(client) is None  # no cart was made, so no cookie either
    assert followed[0]["added"] == {} and len(followed[0]["warnings"]) == 2


# -- only a top-level navigation changes the cart -----------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script", "Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Site": "same-origin"},
    ],
)
@pytest.mark.parametrize("url", ["/cart/add/sku-1?qty=5", "/cart/link/sku-1:5"])
def test_a_subresource_or_fetch_changes_nothing(app, client, headers, url):
    follow(client, "/cart/add/sku-3")
    with received(app, signals.cart_item_added) as added:
        response = client.get(url, headers=headers)
    assert response.status_code == 403
    if headers["Sec-Fetch-Mode"] == "navigate":  # a frame shows a page, never JSON
        assert response.mimetype == "text/html"
        assert response.headers["X-Frame-Options"] == "DENY"
    else:
        assert response.json["error"]["code"] == "navigation_required"
    assert lines(client) == {"sku-3": 1} and added == []


def test_a_head_never_changes_anything(client):
    follow(client, "/cart/add/sku-3")
    assert client.head("/cart/add/sku-1", headers=NAVIGATE).status_code == 403
    assert client.head("/cart/add/sku-1").status_code == 200  # the confirmation page's head
    assert lines(client) == {"sku-3": 1}


def test_without_sec_fetch_a_page_asks_and_its_post_adds(client):
    page = client.get("/cart/add/limited?qty=2&next=/x")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'action="/cart/add/limited?qty=2&amp;next=/x"' in html and "Rare" in html
    assert page.headers["Cache-Control"] == "private, no-store"
    assert lines(client) == {}
    assert client.post("/cart/add/limited?qty=2&next=/x").status_code == 403  # no token
    assert lines(client) == {}
    response = press_button(client, page)
    assert response.status_code == 303 and response.headers["Location"] == "/x"
    assert lines(client) == {"limited": 2}


def test_the_confirmation_post_is_refused_from_another_site(client):
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = client.post("/cart/link/sku-1:1", headers=headers)
        assert response.status_code == 403 and response.json["error"]["code"] == "cross_site"
    assert lines(client) == {}


def test_the_confirmation_post_needs_the_csrf_token_under_csrfprotect(app, client):
    CSRFProtect(app)
    page = client.get("/cart/add/sku-1")
    fields = (confirmation_form(page) or ("", {}))[1]
    assert "csrf_token" in fields
    assert client.post("/cart/add/sku-1").status_code == 403
    without_csrf = {"cart_confirm": fields["cart_confirm"]}
    assert client.post("/cart/add/sku-1", data=without_csrf).status_code == 403
    assert lines(client) == {}
    assert client.post("/cart/add/sku-1", data=fields).status_code == 303
    assert lines(client) == {"sku-1": 1}


def test_a_confirmation_pressed_twice_is_applied_once(app, client):
    """The page's token is single-use: its nonce is the change's marker in the cart."""
    page = client.get("/cart/link/sku-1:2,sku-3:1")
    key = {"Idempotency-Key": "link-1"}
    with received(app, signals.cart_link_followed) as followed:
        assert press_button(client, page, **key).status_code == 303
        assert press_button(client, page, **key).status_code == 303
        assert press_button(client, page).status_code == 303
    assert lines(client) == {"sku-1": 2, "sku-3": 1}
    assert len(followed) == 1
    bad = press_button(client, client.get("/cart/add/sku-1"), **{"Idempotency-Key": "\x01"})
    assert bad.status_code == 303  # a form post: the error is flashed
    assert lines(client) == {"sku-1": 2, "sku-3": 1}


# -- signed links ------------------------------------------------------------------------------


@pytest.fixture
def link(app, carts):
    """carts.cart_link(...) made inside a request to the test server's host."""

    def make(items: Any, **kwargs: Any) -> str:
        with app.test_request_context("/"):
            return carts.cart_link(items, **kwargs)

    return make


def path_of(url: str) -> str:
    assert url.startswith("http://localhost/")
    return url[len("http://localhost") :]


def test_a_signed_link_is_an_absolute_url_that_adds(app, client, link):
    url = link({"sku-1": 2, "sku-3": 1})
    assert url.startswith("http://localhost/cart/signed/")
    with received(app, signals.cart_link_followed) as followed:
        response = follow(client, path_of(url))
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert lines(client) == {"sku-1": 2, "sku-3": 1}
    assert followed[0]["signed"] is True and followed[0]["replace"] is False


def test_a_signed_link_followed_twice_adds_once_per_cart(app, client, new_client, link):
    path = path_of(link({"sku-1": 2}))
    follow(client, path)
    with received(app, signals.cart_item_added) as added:
        again = follow(client, path)
    assert again.status_code == 303 and added == []
    assert lines(client) == {"sku-1": 2}
    assert flashes(client)[-1][0] == "cart-warning"
    other = new_client()  # another browser: another cart, which gets the link once too
    follow(other, path)
    assert lines(other) == {"sku-1": 2}


def test_a_replacing_link_replaces_the_cart_in_one_change(app, client, cart_store, link):
    follow(client, "/cart/link/sku-1:1,sku-2:3")
    before = cart_store.load(CartKey(guest_id_of(client))).version
    with received(app, signals.cart_cleared) as cleared:
        follow(client, path_of(link({"sku-3": 2, "sku-2": 1}, replace=True)))
    assert lines(client) == {"sku-2": 1, "sku-3": 2}
    assert cart_store.load(CartKey(guest_id_of(client))).version == before + 1
    assert len(cleared) == 1


def test_a_replacing_link_never_leaves_the_cart_empty(app, client, cart_store, link):
    follow(client, "/cart/link/sku-1:1,sku-2:3")
    path = path_of(link({"sold-out": 1, "nope": 1}, replace=True))
    with received(app, signals.cart_cleared) as cleared:
        assert follow(client, path).status_code == 303
    assert lines(client) == {"sku-1": 1, "sku-2": 3} and cleared == []
    # A replace that adds only part of what it names (the stock) still replaces.
    follow(client, path_of(link({"limited": 9, "sold-out": 1}, replace=True)))
    assert lines(client) == {"limited": 3}


def test_a_replacing_link_meets_the_caps(client, link, products):
    products.update({f"p{i}": {"unit_cost": "1"} for i in range(100)})
    follow(client, "/cart/link/" + ",".join(f"p{i}:1" for i in range(100)))
    assert len(lines(client)) == 100
    follow(client, path_of(link({"sku-1": 2, "p1": 5}, replace=True)))
    assert lines(client) == {"sku-1": 2, "p1": 5}


def test_a_tampered_signed_link_is_a_400_and_changes_nothing(client, link):
    follow(client, "/cart/add/sku-3")
    path = path_of(link({"sku-1": 2}))
    token = path.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (forged, "x", "a" * 5000, token + "x", "."):
        response = client.get("/cart/signed/" + bad, headers={"Accept": "application/json"})
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_link"
        assert follow(client, "/cart/signed/" + bad).status_code == 303
        assert flashes(client)[-1] == (
            "cart-error",
            "This link is not valid. It may have been cut short or changed.",
        )
    assert lines(client) == {"sku-3": 1}


def test_an_expired_signed_link_is_a_410_and_changes_nothing(client, link):
    path = path_of(link({"sku-1": 2}, max_age=1))
    time.sleep(2.1)
    response = client.get(path)  # no confirmation page either
    assert response.status_code == 410 and response.json["error"]["code"] == "link_expired"
    assert follow(client, path).status_code == 303
    assert flashes(client)[-1] == ("cart-error", "This link has expired.")
    assert lines(client) == {}


def test_a_signed_link_follows_the_navigation_rule(client, link):
    path = path_of(link({"sku-1": 2}))
    image = {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image", "Sec-Fetch-Site": "cross-site"}
    assert client.get(path, headers=image).status_code == 403
    assert client.head(path, headers=NAVIGATE).status_code == 403
    page = client.get(path)
    assert page.status_code == 200 and lines(client) == {}
    assert client.post(path).status_code == 403  # without the page's token
    assert press_button(client, page).status_code == 303
    assert press_button(client, client.get(path)).status_code == 303  # applied once
    assert lines(client) == {"sku-1": 2}


def test_a_signed_link_of_another_instance(client, link):
    path = path_of(link({"sku-1": 2}, instance="wishlist"))
    follow(client, path)
    assert lines(client, "wishlist") == {"sku-1": 2} and lines(client) == {}
    assert client.get(path + "?instance=cart").status_code == 400


def test_a_logged_in_customer_follows_a_signed_link(client, link, cart_store):
    client.post("/login/42")
    follow(client, path_of(link({"sku-1": 1})))
    assert stored(cart_store, "customer:42") == {"sku-1": 1}


def test_cart_link_checks_its_items(app, carts):
    with app.test_request_context("/"):
        for bad in (
            {},
            {"sku-1": 0},
            {"sku-1": True},
            {"sku-1": 1.0},
            {"": 1},
            {f"p{i}": 1 for i in range(101)},
            [("sku-1", 1)],
        ):
            with pytest.raises((ValueError, TypeError)):
                carts.cart_link(bad)
        with pytest.raises(ValueError):
            carts.cart_link({"sku-1": 1}, max_age=0)
        with pytest.raises(ValueError):
            carts.cart_link({"sku-1": 1}, instance="nope")


def outside_a_request(app: Any, work: Any) -> Any:
    """`work()` in an app context without a request (as in the CLI): in a thread of its own,
    away from the request context pytest-flask keeps pushed."""
    result: list[Any] = []

    def run() -> None:
        with app.app_context():
            try:
                result.append(work())
            except Exception as exc:
                result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0]


def test_cart_link_outside_a_request_needs_server_name(app, carts):
    error = outside_a_request(app, lambda: carts.cart_link({"sku-1": 1}))
    assert isinstance(error, RuntimeError) and "SERVER_NAME" in str(error)
    app.config.update(SERVER_NAME="shop.example", PREFERRED_URL_SCHEME="https")
    url = outside_a_request(app, lambda: carts.cart_link({"sku-1": 1}))
    assert url.startswith("https://shop.example/cart/signed/")


def test_a_request_host_wins_over_nothing(app, carts):
    with app.test_request_context("/", base_url="https://m.shop.example"):
        assert carts.cart_link({"sku-1": 1}).startswith("https://m.shop.example/cart/signed/")


def test_a_guest_cart_being_merged_elsewhere_is_not_lost(client, link, cart_store):
    follow(client, "/cart/add/sku-3")
    guest = guest_id_of(client)
    cart_store.seal(CartKey(guest))  # a login merge in another tab has just begun
    response = follow(client, path_of(link({"sku-1": 1})))
    assert response.status_code == 303
    assert flashes(client)[-1] == ("cart-error", "Your cart was just updated. Please try again.")
    assert stored(cart_store, guest) == {"sku-3": 1}


def test_the_json_routes_still_work_beside_links(client):
    follow(client, "/cart/add/sku-1")
    assert add(client, "sku-1").json["quantity"] == 2


def test_a_path_redirect_is_under_the_apps_root(client):
    response = client.get("/cart/add/sku-1", base_url="http://localhost/shop/", headers=NAVIGATE)
    assert response.status_code == 303 and response.headers["Location"] == "/shop/"


@pytest.mark.parametrize("app_config", [{"CART_BLUEPRINT": False}])
def test_cart_link_needs_the_routes(app, carts):
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="CART_BLUEPRINT"):
        carts.cart_link({"sku-1": 1})
