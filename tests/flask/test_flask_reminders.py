"""Reaching guests: a contact address kept with the cart, and a way to stop reminders.

`current_cart.set_email` (validated, gone with the cart at checkout and at a merge into a
customer's cart) and ``/cart/unsubscribe/<token>`` (a confirmed GET, or RFC 8058's
one-click POST), on every store.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, jsonify, request

from flask_cart import CartManager, current_cart
from flask_cart.errors import CartError
from flask_cart.signals import cart_unsubscribed
from flask_cart.stores.base import CartKey, CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.flask.shop import add, guest_id_of
from tests.test_cleanup import age_cart

HOUR = timedelta(hours=1)


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"CART_STORE_TIMEOUT": 30}


@pytest.fixture
def saving(app: Flask) -> Flask:
    """The shop with a "save my cart" view calling current_cart.set_email."""

    @app.post("/save-my-cart")
    def save_my_cart() -> Any:
        try:
            kept = current_cart.set_email((request.get_json() or {}).get("email"))
        except CartError as exc:
            return jsonify(exc.to_dict()), exc.status
        return jsonify(kept=kept)

    return app


def save(client: Any, email: Any) -> Any:
    return client.post("/save-my-cart", json={"email": email})


def reports(app: Flask, carts: CartManager, **kw: Any) -> list[dict[str, Any]]:
    with app.test_request_context():
        return carts.abandoned_reports(["1h"], **kw)


def guest_cart(client: Any, store: CartStore) -> CartKey:
    assert add(client, "sku-1").status_code == 200
    return CartKey(guest_id_of(client) or "")


# --- 9: a guest's contact address ---------------------------------------------------------


def test_a_saved_address_is_kept_with_the_cart_and_reports_carry_it(
    saving: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    client = saving.test_client()
    key = guest_cart(client, cart_store)
    assert save(client, "  Ann.Lee+cart@Example.co.uk ").get_json() == {"kept": True}
    age_cart(cart_store, key, 2 * HOUR)
    (report,) = reports(saving, carts)
    assert report["identifier"] == key.identifier
    assert report["email"] == "Ann.Lee+cart@Example.co.uk"
    assert report["customer_id"] is None


def test_an_address_without_a_cart_is_not_kept(saving: Flask) -> None:
    assert save(saving.test_client(), "ann@example.com").get_json() == {"kept": False}


@pytest.mark.parametrize(
    "bad",
    [
        "ann",
        "ann@example",
        "ann@@example.com",
        "an n@example.com",
        "ann@exa mple.com",
        "ann@example.com\r\nBcc: eve@example.com",
        "ann\x00@example.com",
        "<ann@example.com>",
        "ann@example.com, eve@example.com",
        "@example.com",
        "ann@.example.com",
        "ann@example..com",
        "a" * 245 + "@example.com",
        "",
        42,
        ["ann@example.com"],
    ],
)
def test_a_bad_address_is_a_400_and_changes_nothing(
    saving: Flask, carts: CartManager, cart_store: CartStore, bad: Any
) -> None:
    client = saving.test_client()
    key = guest_cart(client, cart_store)
    assert save(client, "ann@example.com").status_code == 200
    version = cart_store.load(key).version
    response = save(client, bad)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_input"
    state = cart_store.load(key)
    assert state.version == version
    (contact,) = cart_store.contacts([key], [state.uid])
    assert contact.email == "ann@example.com"


def test_the_address_goes_with_the_cart_at_checkout(
    saving: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    client = saving.test_client()
    key = guest_cart(client, cart_store)
    save(client, "ann@example.com")
    assert client.post("/checkout").status_code == 200
    assert not cart_store.load(key).exists
    # A cart made again at the same key starts without an address.
    cart_store.add(key, _line(), owner=_owner(), limits=_limits())
    (contact,) = cart_store.contacts([key], [cart_store.load(key).uid])
    assert contact.email is None
    if isinstance(cart_store, RedisStore):
        assert cart_store.client.hget(cart_store.key(key), "_e") is None
    else:
        assert isinstance(cart_store, SQLStore)
        cart_store.take(key)
        from flask_cart.stores.sql_abandoned import delete_stale_contacts

        delete_stale_contacts(cart_store)
        import sqlalchemy as sa

        table = cart_store.table.metadata.tables[f"{cart_store.table.name}_contacts"]
        with cart_store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def test_the_address_is_not_carried_into_a_customer_s_cart(
    saving: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    client = saving.test_client()
    guest = guest_cart(client, cart_store)
    save(client, "ann@example.com")
    assert client.post("/login/42").status_code == 200
    customer = CartKey("customer:42")
    assert cart_store.load(customer).lines
    age_cart(cart_store, customer, 2 * HOUR)
    found = reports(saving, carts)
    assert [(r["identifier"], r["email"]) for r in found] == [("customer:42", None)]
    assert not cart_store.load(guest).lines


def _line() -> Any:
    from flask_cart.lines import Line

    return Line("sku-1", 1, "9.99")


def _owner() -> Any:
    from flask_cart.lines import Owner

    return Owner(None, ttl=86400)


def _limits() -> Any:
    from flask_cart.lines import Limits

    return Limits()


# --- 10: stopping reminders ------------------------------------------------------------------


def unsubscribe_path(app: Flask, carts: CartManager) -> str:
    (report,) = reports(app, carts, with_links=True)
    url = report["unsubscribe_url"]
    assert url.startswith("http://localhost/cart/unsubscribe/")
    return url.removeprefix("http://localhost")


def test_a_confirmed_unsubscribe_stops_reminders_for_good(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    client = app.test_client()
    key = guest_cart(client, cart_store)
    age_cart(cart_store, key, 2 * HOUR)
    path = unsubscribe_path(app, carts)
    sent: list[dict[str, Any]] = []
    with cart_unsubscribed.connected_to(lambda sender, **kw: sent.append(kw)):
        page = app.test_client().get(path)  # a scanner, or the person: changes nothing
        assert page.status_code == 200 and b"Stop reminders" in page.data
        assert page.mimetype == "text/html"
        assert len(reports(app, carts)) == 1
        done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"no more reminders" in done.data
    assert sent == [{"identifier": key.identifier, "instance": "cart"}]
    assert reports(app, carts) == []
    assert add(client, "sku-2").status_code == 200  # a change keeps the flag
    age_cart(cart_store, key, 2 * HOUR)
    assert reports(app, carts) == []


def test_a_one_click_post_from_a_mailbox_provider_stops_reminders(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    key = guest_cart(app.test_client(), cart_store)
    age_cart(cart_store, key, 2 * HOUR)
    path = unsubscribe_path(app, carts)
    provider = app.test_client()  # no cookies, another site, no CSRF token
    response = provider.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
        headers={"Origin": "https://mail.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 200
    assert reports(app, carts) == []


@pytest.mark.parametrize(
    "body",
    ["", "List-Unsubscribe=Yes", "unsubscribe=1"],
)
def test_a_post_without_the_one_click_body_changes_nothing(
    app: Flask, carts: CartManager, cart_store: CartStore, body: str
) -> None:
    key = guest_cart(app.test_client(), cart_store)
    age_cart(cart_store, key, 2 * HOUR)
    path = unsubscribe_path(app, carts)
    response = app.test_client().post(
        path, data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert len(reports(app, carts)) == 1


def test_a_tampered_or_old_unsubscribe_link_stops_nothing(
    app: Flask, carts: CartManager, cart_store: CartStore
) -> None:
    client = app.test_client()
    key = guest_cart(client, cart_store)
    age_cart(cart_store, key, 2 * HOUR)
    path = unsubscribe_path(app, carts)
    bad = app.test_client().post(path[:-3] + "xyz", data={"List-Unsubscribe": "One-Click"})
    assert bad.status_code == 400 and b"Traceback" not in bad.data
    assert len(reports(app, carts)) == 1
    cart_store.take(key)  # checked out; a new cart at the same key
    cart_store.add(key, _line(), owner=_owner(), limits=_limits())
    age_cart(cart_store, key, 2 * HOUR)
    old = app.test_client().post(path, data={"List-Unsubscribe": "One-Click"})
    assert old.status_code == 200
    assert len(reports(app, carts)) == 1


# --- the "save my cart" route ----------------------------------------------------------------


def contact_of(store: CartStore, key: CartKey) -> Any:
    (contact,) = store.contacts([key], [store.load(key).uid])
    return contact


def test_put_cart_email_keeps_the_address(app: Flask, cart_store: CartStore) -> None:
    client = app.test_client()
    assert client.put("/cart/email", json={"email": "ann@example.com"}).get_json() == {
        "kept": False
    }
    key = guest_cart(client, cart_store)
    response = client.put("/cart/email", json={"email": "ann@example.com"})
    assert response.status_code == 200 and response.get_json() == {"kept": True}
    assert contact_of(cart_store, key).email == "ann@example.com"
    assert client.put("/cart/email", json={"email": None}).get_json() == {"kept": True}
    assert contact_of(cart_store, key).email is None


def test_a_save_my_cart_form_posts_and_lands_back(app: Flask, cart_store: CartStore) -> None:
    client = app.test_client()
    key = guest_cart(client, cart_store)
    response = client.post("/cart/email", data={"email": "ann@example.com", "next": "/cart-page"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/cart-page")
    assert contact_of(cart_store, key).email == "ann@example.com"


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
)
def test_another_site_cannot_set_the_address(
    app: Flask, cart_store: CartStore, headers: dict[str, str]
) -> None:
    client = app.test_client()
    key = guest_cart(client, cart_store)
    response = client.put("/cart/email", json={"email": "eve@example.com"}, headers=headers)
    assert response.status_code == 403
    assert contact_of(cart_store, key).email is None


def test_a_bad_address_on_the_route_is_a_400(app: Flask, cart_store: CartStore) -> None:
    client = app.test_client()
    key = guest_cart(client, cart_store)
    response = client.put("/cart/email", json={"email": "ann@example.com\r\nBcc: x@y.z"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_input"
    assert contact_of(cart_store, key).email is None
