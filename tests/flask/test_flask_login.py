"""Flask-Login on every store: merge at login (every strategy, idempotent, concurrent,
crash-safe), logout, re-login from another device, link at registration."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flask_cart import signals
from flask_cart.errors import StoreUnavailable
from flask_cart.manager import store_unavailable_response
from flask_cart.stores.base import CartKey
from tests.flask.shop import add, build_app, guest_id_of, stored
from tests.helpers import raw_dump


def login(client: Any, user_id: str = "42", remember: bool = False) -> Any:
    response = client.post(f"/login/{user_id}" + ("?remember=1" if remember else ""))
    assert response.status_code == 200, response.data
    return response


def quantities(client: Any, instance: str = "cart") -> dict[str, int]:
    body = client.get(f"/cart?instance={instance}").json
    return {item["product_id"]: item["quantity"] for item in body["items"]}


def customer_with_cart(app: Any, user_id: str = "42") -> None:
    """The customer's stored cart: sku-1 x2, sku-2 x1 (made on another device)."""
    device = app.test_client()
    login(device, user_id)
    add(device, "sku-1", 2)
    add(device, "sku-2", 1)
    device.post("/logout")


EXPECTED = {
    "sum": {"sku-1": 5, "sku-2": 1, "sku-3": 1},
    "max": {"sku-1": 3, "sku-2": 1, "sku-3": 1},
    "guest": {"sku-1": 3, "sku-2": 1, "sku-3": 1},
    "customer": {"sku-1": 2, "sku-2": 1, "sku-3": 1},
}


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_merge_by_strategy(cart_store, products, strategy):
    app, _ = build_app(cart_store, products, CART_MERGE_STRATEGY=strategy)
    customer_with_cart(app)
    client = app.test_client()
    add(client, "sku-1", 3)
    add(client, "sku-3", 1)
    client.post("/cart/items?instance=wishlist", json={"product_id": "sku-2"})
    guest = guest_id_of(client)
    merged = []
    signals.cart_merged.connect(lambda sender, **kw: merged.append(kw), weak=False)
    try:
        response = login(client)
    finally:
        signals.cart_merged.receivers.clear()
    assert response.json["quantity"] == sum(EXPECTED[strategy].values())
    assert quantities(client) == EXPECTED[strategy]
    assert stored(cart_store, "customer:42") == EXPECTED[strategy]
    assert quantities(client, "wishlist") == {"sku-2": 1}
    # The guest carts are gone, and so is the cookie.
    assert not cart_store.load(CartKey(guest)).exists
    assert not cart_store.load(CartKey(guest, "wishlist")).exists
    assert client.get_cookie("guest_cart_id") is None
    assert [kw["cart"].instance for kw in merged] == ["cart", "wishlist"]
    assert merged[0]["dropped"] == []
    assert merged[0]["user"].get_id() == "42"
    moved = {
        "sum": {"sku-1": 3, "sku-3": 1},
        "max": {"sku-1": 1, "sku-3": 1},
        "guest": {"sku-1": 1, "sku-3": 1},
        "customer": {"sku-3": 1},
    }
    assert merged[0]["moved"] == moved[strategy]


def test_merge_is_clamped_to_caps_and_stock(cart_store, products):
    app, _ = build_app(cart_store, products, CART_MAX_LINE_QUANTITY=10, CART_MAX_LINES=3)
    device = app.test_client()
    login(device)
    add(device, "limited", 2)
    add(device, "sku-1", 8)
    add(device, "sku-3", 1)
    device.post("/logout")
    client = app.test_client()
    add(client, "limited", 2)
    add(client, "sku-1", 5)
    add(client, "sku-2", 1)  # one line too many for CART_MAX_LINES=3
    merged = []
    signals.cart_merged.connect(lambda sender, **kw: merged.append(kw), weak=False)
    try:
        login(client)
    finally:
        signals.cart_merged.receivers.clear()
    assert quantities(client) == {"limited": 3, "sku-1": 10, "sku-3": 1}
    assert merged[0]["dropped"] == ["sku-2"]


def test_merging_twice_is_merging_once(app, cart_store):
    customer_with_cart(app)
    client = app.test_client()
    add(client, "sku-1", 3)
    cookie = client.get_cookie("guest_cart_id").value
    login(client)
    client.post("/logout")
    # Replay the old guest cookie and log in again: nothing is counted twice.
    client.set_cookie("guest_cart_id", cookie)
    login(client)
    assert quantities(client) == {"sku-1": 5, "sku-2": 1}


def test_concurrent_logins_merge_once(app, cart_store):
    customer_with_cart(app)
    guest = app.test_client()
    add(guest, "sku-1", 3)
    add(guest, "sku-3", 2)
    cookie = guest.get_cookie("guest_cart_id").value
    clients = [app.test_client() for _ in range(4)]
    for client in clients:
        client.set_cookie("guest_cart_id", cookie)
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def run(client: Any) -> None:
        barrier.wait()
        statuses.append(client.post("/login/42").status_code)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    for client in clients:  # a merge a store error interrupted is finished here
        assert quantities(client) == {"sku-1": 5, "sku-2": 1, "sku-3": 2}
    assert stored(cart_store, "customer:42") == {"sku-1": 5, "sku-2": 1, "sku-3": 2}
    assert not cart_store.load(CartKey(guest_id_of(guest))).exists


class Crash(Exception):
    pass


@pytest.mark.parametrize("failure", [StoreUnavailable("connection lost"), Crash("killed")])
def test_crash_between_merge_and_delete(app, cart_store, monkeypatch, failure):
    customer_with_cart(app)
    client = app.test_client()
    add(client, "sku-1", 3)
    add(client, "sku-3", 1)
    guest = guest_id_of(client)
    bury = cart_store.bury  # the step after the merge: the guest cart becomes a tombstone
    calls = []

    def failing_bury(key: CartKey, into: CartKey) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise failure
        bury(key, into)

    monkeypatch.setattr(cart_store, "bury", failing_bury)
    if isinstance(failure, Crash):
        with pytest.raises(Crash):
            client.post("/login/42")
        # The customer cart was written, the guest cart is still there (sealed).
        assert stored(cart_store, "customer:42") == {"sku-1": 5, "sku-2": 1, "sku-3": 1}
        assert cart_store.load(CartKey(guest)).sealed
        login(client)  # the login is retried
    else:
        # The login succeeds; the merge is finished when the cart is next touched (here
        # by the login view itself).
        login(client)
    # The next touch of the cart finishes the merge: nothing lost, nothing twice.
    assert quantities(client) == {"sku-1": 5, "sku-2": 1, "sku-3": 1}
    assert quantities(client) == {"sku-1": 5, "sku-2": 1, "sku-3": 1}
    assert not cart_store.load(CartKey(guest)).exists
    assert client.get_cookie("guest_cart_id") is None


def test_logout_and_login_again_elsewhere(app, cart_store):
    laptop = app.test_client()
    login(laptop)
    add(laptop, "sku-1", 2)
    laptop.post("/logout")
    assert quantities(laptop) == {}  # a guest with an empty cart
    assert laptop.get_cookie("guest_cart_id") is None
    assert stored(cart_store, "customer:42") == {"sku-1": 2}  # still stored
    phone = app.test_client()
    login(phone)
    assert quantities(phone) == {"sku-1": 2}
    login(laptop)
    assert quantities(laptop) == {"sku-1": 2}


def test_a_customer_never_sees_a_guest_cart(app, cart_store):
    client = app.test_client()
    login(client)
    add(client, "sku-1")
    assert client.get_cookie("guest_cart_id") is None
    assert stored(cart_store, "customer:42") == {"sku-1": 1}


def test_replayed_guest_cookie_after_login_gives_an_empty_cart_and_takes_no_change(app, cart_store):
    """The merged guest cart is a tombstone for a while: a change sent with its cookie
    answers 409 instead of starting a guest cart that nobody would hold."""
    client = app.test_client()
    add(client, "sku-1", 3)
    old = client.get_cookie("guest_cart_id").value
    old_id = guest_id_of(client)
    login(client)
    replay = app.test_client()
    replay.set_cookie("guest_cart_id", old)
    assert quantities(replay) == {}
    assert add(replay, "sku-2").status_code == 409
    assert guest_id_of(replay) == old_id
    assert quantities(replay) == {}
    assert not cart_store.load(CartKey(old_id)).exists
    assert quantities(client) == {"sku-1": 3}


def test_merge_when_loaded_from_remember_cookie(app, cart_store):
    customer_with_cart(app)
    remembered = app.test_client()
    login(remembered, remember=True)
    token = remembered.get_cookie("remember_token").value
    client = app.test_client()
    add(client, "sku-1", 1)
    guest = guest_id_of(client)
    client.set_cookie("remember_token", token)  # a returning customer, session expired
    assert quantities(client) == {"sku-1": 3, "sku-2": 1}
    assert not cart_store.load(CartKey(guest)).exists
    assert client.get_cookie("guest_cart_id") is None


def test_link_guest_cart_at_registration(app, cart_store):
    client = app.test_client()
    add(client, "sku-1", 2)
    client.post("/cart/items?instance=wishlist", json={"product_id": "sku-3"})
    guest = guest_id_of(client)
    assert client.post("/register/new-user").status_code == 200
    assert quantities(client) == {"sku-1": 2}
    assert quantities(client, "wishlist") == {"sku-3": 1}
    assert stored(cart_store, "customer:new-user") == {"sku-1": 2}
    assert not cart_store.load(CartKey(guest)).exists
    assert client.get_cookie("guest_cart_id") is None
    client.post("/logout")
    other = app.test_client()
    login(other, "new-user")
    assert quantities(other) == {"sku-1": 2}


def test_login_with_the_store_down_still_logs_in(app, cart_store, monkeypatch):
    app.register_error_handler(StoreUnavailable, store_unavailable_response)
    client = app.test_client()
    add(client, "sku-1", 2)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("down")

    monkeypatch.setattr(cart_store, "load", down)
    response = client.post("/login/42")
    # The login view reads the cart: it degrades (no copy of the customer's cart: empty).
    assert (response.status_code, response.json["quantity"]) == (200, 0)
    assert client.get_cookie("guest_cart_id") is not None  # the next request merges
    monkeypatch.undo()
    assert quantities(client) == {"sku-1": 2}
    assert client.get_cookie("guest_cart_id") is None


def test_a_guest_add_racing_its_login_merge_is_refused_not_orphaned(app, cart_store):
    """Another tab's login has sealed the guest cart and is merging it. An add from this tab
    must not land in a new guest cart (the login's answer deletes the guest cookie, which
    would orphan it): it is refused with 409, changes nothing, and keeps the cookie."""
    client = app.test_client()
    add(client, "sku-1", 1)
    guest = guest_id_of(client)
    cart_store.seal(CartKey(guest))  # the login's merge, half-way
    before = raw_dump(cart_store, CartKey(guest))
    response = add(client, "sku-2", 1)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "cart_closed"
    assert raw_dump(cart_store, CartKey(guest)) == before
    assert guest_id_of(client) == guest
    login(client)  # the login finishes; the shopper retries
    assert add(client, "sku-2", 1).status_code == 200
    assert stored(cart_store, "customer:42") == {"sku-1": 1, "sku-2": 1}


def test_a_long_sealed_guest_cart_gives_way_to_a_new_one(app, cart_store, monkeypatch):
    """A seal older than the merge grace is an abandoned merge: a write moves to a new id."""
    monkeypatch.setattr("flask_cart.request_cart.MERGE_GRACE_SECONDS", 0)
    client = app.test_client()
    add(client, "sku-1", 1)
    guest = guest_id_of(client)
    cart_store.seal(CartKey(guest))
    assert add(client, "sku-2", 1).status_code == 200
    assert guest_id_of(client) != guest
    assert quantities(client) == {"sku-2": 1}
