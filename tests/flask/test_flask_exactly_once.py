"""Exactly once over HTTP: an Idempotency-Key honoured whatever happens to the cart, a reused
key refused, keys and signed links followed across a login, and no line in a cart nobody
holds when an add races its own login (the old guest cookie replayed after the merge)."""

from __future__ import annotations

from typing import Any

import pytest

from flask_cart.stores.base import CartKey, is_tombstone
from tests.flask.shop import add, guest_id_of, stored
from tests.flask.test_flask_links import follow, lines
from tests.helpers import raw_dump


def keyed(key: str) -> dict[str, Any]:
    return {"headers": {"Idempotency-Key": key}}


def login(client: Any, user_id: str = "42") -> Any:
    response = client.post(f"/login/{user_id}")
    assert response.status_code == 200
    return response


@pytest.fixture
def link(app, carts):
    def make(items: Any, **kwargs: Any) -> str:
        with app.test_request_context("/"):
            url: str = carts.cart_link(items, **kwargs)
        return url[len("http://localhost") :]

    return make


def test_an_offline_queue_of_41_keyed_adds_replayed_is_applied_once(client, cart_store):
    login(client)
    for n in range(41):
        assert add(client, "sku-3", 1, **keyed(f"queued-{n}")).status_code == 200
    for n in range(41):  # the phone did not see the answers and sends the queue again
        assert add(client, "sku-3", 1, **keyed(f"queued-{n}")).status_code == 200
    assert stored(cart_store, "customer:42") == {"sku-3": 41}


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/cart/items", {"product_id": "sku-2", "quantity": 1}),
        ("POST", "/cart/items", {"product_id": "sku-1", "quantity": 3}),
        ("PATCH", "/cart/items/sku-1", {"quantity": 5}),
        ("DELETE", "/cart/items/sku-1", None),
        ("DELETE", "/cart", None),
    ],
    ids=["another-product", "another-quantity", "patch", "delete-line", "clear"],
)
def test_a_key_reused_for_another_change_answers_422_and_changes_nothing(
    client, cart_store, method, url, body
):
    login(client)
    assert add(client, "sku-1", 1, **keyed("k")).status_code == 200
    before = raw_dump(cart_store, CartKey("customer:42"))
    response = client.open(url, method=method, json=body, **keyed("k"))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "idempotency_key_reused"
    assert raw_dump(cart_store, CartKey("customer:42")) == before
    assert add(client, "sku-1", 1, **keyed("k")).status_code == 200  # the same change: a retry
    assert stored(cart_store, "customer:42") == {"sku-1": 1}


def test_a_keyed_guest_add_retried_after_login_is_not_applied_again(app, cart_store):
    client = app.test_client()
    assert add(client, "sku-1", 2, **keyed("g-1")).status_code == 200
    login(client)
    retry = add(client, "sku-1", 2, **keyed("g-1"))  # the answer was lost: sent again
    assert retry.status_code == 200
    assert stored(cart_store, "customer:42") == {"sku-1": 2}


def test_a_signed_link_followed_as_a_guest_is_not_applied_again_after_login(app, cart_store, link):
    path = link({"sku-1": 2})
    client = app.test_client()
    follow(client, path)
    login(client)
    assert lines(client) == {"sku-1": 2}
    for _ in range(40):  # 40 other guest carts merged into the customer's since
        other = app.test_client()
        add(other, "sku-3", 1)
        login(other)
    follow(client, path)
    assert lines(client) == {"sku-1": 2, "sku-3": 40}


def test_a_signed_link_followed_at_registration_is_not_applied_again(app, cart_store, link):
    path = link({"sku-1": 2})
    client = app.test_client()
    follow(client, path)
    add(client, "sku-3", 1, **keyed("r-1"))
    assert client.post("/register/new-user").status_code == 200
    follow(client, path)
    add(client, "sku-3", 1, **keyed("r-1"))
    assert stored(cart_store, "customer:new-user") == {"sku-1": 2, "sku-3": 1}


@pytest.mark.parametrize("keyed_add", [False, True], ids=["plain", "keyed"])
def test_an_add_with_the_old_guest_cookie_after_the_login_merge_is_refused(
    app, cart_store, keyed_add
):
    """The login merged the guest cart; before its answer (clearing the guest cookie)
    reached the browser, another tab sent an add with the old cookie. It answers 409 and
    lands nowhere: no new guest cart that nobody would hold."""
    client = app.test_client()
    add(client, "sku-1", 2)
    old_cookie = client.get_cookie("guest_cart_id").value
    old_id = guest_id_of(client)
    login(client)
    racing = app.test_client()
    racing.set_cookie("guest_cart_id", old_cookie)
    extra = keyed("late") if keyed_add else {}
    response = add(racing, "sku-2", 1, **extra)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "cart_closed"
    assert "reload" in response.json["error"]["message"]
    assert guest_id_of(racing) == old_id  # no new guest id handed out
    assert is_tombstone(cart_store.load(CartKey(old_id)))
    assert stored(cart_store, "customer:42") == {"sku-1": 2}
    assert lines(racing) == {}  # a read shows an empty cart and issues nothing
    assert guest_id_of(racing) == old_id
    assert add(client, "sku-2", 1, **extra).status_code == 200  # the reload: as the customer
    assert stored(cart_store, "customer:42") == {"sku-1": 2, "sku-2": 1}
