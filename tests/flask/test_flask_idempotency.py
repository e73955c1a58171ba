"""`Idempotency-Key` on the change routes: a change retried with the same key is applied once."""

from __future__ import annotations

from typing import Any

import pytest

from flask_cart.errors import StoreUnavailable
from flask_cart.stores.base import CartKey
from tests.flask.shop import add, guest_id_of, stored
from tests.helpers import raw_dump


def keyed(key: str) -> dict[str, Any]:
    return {"headers": {"Idempotency-Key": key}}


def test_a_retried_add_is_applied_once(client, cart_store):
    client.post("/login/42")
    first = add(client, "sku-1", 2, **keyed("add-1"))
    again = add(client, "sku-1", 2, **keyed("add-1"))
    assert first.status_code == again.status_code == 200
    assert again.json["quantity"] == 2
    assert stored(cart_store, "customer:42") == {"sku-1": 2}
    add(client, "sku-1", 2, **keyed("add-2"))  # another key is another change
    assert stored(cart_store, "customer:42") == {"sku-1": 4}


def test_a_retry_answers_the_cart_as_it_is_now(client, cart_store):
    client.post("/login/42")
    add(client, "sku-1", 1, **keyed("k"))
    add(client, "sku-2", 1)
    again = add(client, "sku-1", 1, **keyed("k"))
    assert [(i["product_id"], i["quantity"]) for i in again.json["items"]] == [
        ("sku-1", 1),
        ("sku-2", 1),
    ]


def test_each_change_route_is_idempotent(client, cart_store):
    client.post("/login/42")
    add(client, "sku-1", 5)
    add(client, "sku-2", 1)
    add(client, "sku-3", 1)
    for _ in range(2):
        response = client.patch("/cart/items/sku-1", json={"quantity": 3}, **keyed("p"))
        assert response.status_code == 200
    # A PATCH to 3 and then an add of 1, then the PATCH retried: the retry changes nothing.
    add(client, "sku-1", 1)
    assert client.patch("/cart/items/sku-1", json={"quantity": 3}, **keyed("p")).status_code == 200
    assert stored(cart_store, "customer:42")["sku-1"] == 4
    for _ in range(2):
        response = client.delete("/cart/items/sku-2", **keyed("d"))
        assert response.status_code == 200  # the retry answers the cart, not 404
    assert "sku-2" not in stored(cart_store, "customer:42")
    for _ in range(2):
        assert client.delete("/cart", **keyed("c")).status_code == 200
    add(client, "sku-3", 1)
    assert client.delete("/cart", **keyed("c")).status_code == 200  # already applied
    assert stored(cart_store, "customer:42") == {"sku-3": 1}


def test_keys_are_per_owner(app, cart_store):
    alice, bob = app.test_client(), app.test_client()
    alice.post("/login/alice")
    bob.post("/login/bob")
    add(alice, "sku-1", 1, **keyed("same"))
    add(bob, "sku-1", 1, **keyed("same"))
    assert stored(cart_store, "customer:alice") == {"sku-1": 1}
    assert stored(cart_store, "customer:bob") == {"sku-1": 1}


def test_a_guest_retry_with_its_cookie_is_applied_once(client, cart_store):
    add(client, "sku-1", 1)
    add(client, "sku-3", 2, **keyed("g"))
    add(client, "sku-3", 2, **keyed("g"))
    assert stored(cart_store, guest_id_of(client)) == {"sku-1": 1, "sku-3": 2}


def test_a_change_applied_behind_a_503_is_not_applied_again(client, cart_store, monkeypatch):
    """The store applied the change but its answer was lost: the client saw a 503 and retries."""
    client.post("/login/42")
    add(client, "sku-1", 1)
    real_add = cart_store.add

    def lost_answer(*args: Any, **kwargs: Any) -> Any:
        real_add(*args, **kwargs)
        raise StoreUnavailable("the answer was lost")

    monkeypatch.setattr(cart_store, "add", lost_answer)
    response = add(client, "sku-1", 2, **keyed("retry-me"))
    assert response.status_code == 503
    assert response.json["error"]["code"] == "store_unavailable"
    monkeypatch.undo()
    retry = add(client, "sku-1", 2, **keyed("retry-me"))
    assert retry.status_code == 200
    assert retry.json["quantity"] == 3
    assert stored(cart_store, "customer:42") == {"sku-1": 3}


@pytest.mark.parametrize(
    "key",
    ["", " ", "x" * 256, "caf\u00e9", "tab\there", "del\x7f"],
    ids=["empty", "blank", "too-long", "non-ascii", "tab", "control"],
)
def test_a_bad_key_is_refused_and_changes_nothing(client, cart_store, key):
    client.post("/login/42")
    add(client, "sku-1", 1)
    before = raw_dump(cart_store, CartKey("customer:42"))
    response = client.post(
        "/cart/items",
        json={"product_id": "sku-1"},
        headers=[("Idempotency-Key", key.encode("utf-8").decode("latin-1"))],
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_idempotency_key"
    assert raw_dump(cart_store, CartKey("customer:42")) == before


def test_a_key_is_kept_after_32_later_changes(client, cart_store):
    client.post("/login/42")
    add(client, "sku-3", 1, **keyed("old"))
    for n in range(32):
        add(client, "sku-3", 1, **keyed(f"k{n}"))
    assert stored(cart_store, "customer:42") == {"sku-3": 33}
    add(client, "sku-3", 1, **keyed("old"))  # kept for 24 h: still the same change
    assert stored(cart_store, "customer:42") == {"sku-3": 33}
