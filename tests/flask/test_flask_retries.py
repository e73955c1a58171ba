"""Retries, checkout races and the eager hook at their edges, on every store.

Each test here reproduces a defect seen on the real stores: a keyed change re-applied
after its cart was re-keyed, keys pushed out by unkeyed changes, a retry refused by a later
stock drop, a checkout taking a new cart that reached the reviewed version number again,
and eager restores on static files. (A session checkout committed on its own by SQLite is
tested in test_flask_checkout.py.)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask import request as http_request

from flask_cart import current_cart
from flask_cart.errors import CartChanged, StoreUnavailable
from flask_cart.lines import Limits, Line, Owner
from flask_cart.stores.base import CartKey
from tests.flask.shop import add, build_app, stored

K = {"headers": {"Idempotency-Key": "retry-me"}}


def test_new_guest_keyed_add_sent_three_times_is_applied_once(client, cart_store):
    """A new guest's keyed add, repeated: the repeat on the v1 cart re-keys the cart to a new
    guest id (check_new_guest_cart), so the third copy is scoped to another id and applied."""
    answers = [add(client, "sku-1", 1, **K) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[-1].json["quantity"] == 1


def test_a_key_survives_32_changes_sent_without_keys(client, cart_store):
    client.post("/login/42")
    add(client, "sku-3", 1, **K)
    add(client, "sku-1", 1)
    for n in range(32):
        client.patch("/cart/items/sku-1", json={"quantity": 1 + n % 2})
    add(client, "sku-3", 1, **K)  # the retry: still remembered
    assert stored(cart_store, "customer:42")["sku-3"] == 1


def test_a_retry_of_an_applied_add_is_not_refused_by_a_later_stock_drop(
    client, cart_store, monkeypatch, products
):
    client.post("/login/42")
    real_add = cart_store.add

    def lost_answer(*args: Any, **kwargs: Any) -> Any:
        real_add(*args, **kwargs)
        raise StoreUnavailable("the answer was lost")

    monkeypatch.setattr(cart_store, "add", lost_answer)
    assert add(client, "limited", 2, **K).status_code == 503
    monkeypatch.undo()
    products["limited"]["stock"] = 1  # someone else bought one meanwhile
    retry = add(client, "limited", 2, **K)
    # The change was applied: its retry answers the cart, not "refused, nothing changed".
    assert retry.status_code == 200, retry.json
    assert stored(cart_store, "customer:42") == {"limited": 2}


class Hooked(dict):
    """A catalogue entry whose lookup runs `hook` once (another device acting meanwhile)."""

    hook: Any = None

    def get(self, name: str, default: Any = None) -> Any:
        hook, type(self).hook = type(self).hook, None
        if hook is not None:
            hook()
        return super().get(name, default)


def test_checkout_takes_only_the_reviewed_cart(app, cart_store, products):
    @app.get("/review")
    def review_view() -> Any:
        current_cart.refresh()
        return jsonify(token=current_cart.token)

    @app.post("/order")
    def order_view() -> Any:
        try:
            order = current_cart.checkout(expect=http_request.get_json()["token"])
        except CartChanged:
            return jsonify(changed=True), 409
        return jsonify(
            items={pid: d["quantity"] for pid, d in order["items"].items()},
            total=str(order["total_cost"]),
        )

    client = app.test_client()
    client.post("/login/42")
    add(client, "sku-1", 1)  # one mug: version 1
    token = client.get("/review").json["token"]
    key = CartKey("customer:42")

    def other_device() -> None:
        # Between the order's read and its removal: another device checks the cart out
        # and starts a new one (version 1 again) with five spoons.
        cart_store.take(key)
        cart_store.add(
            key,
            Line("sku-2", 5, "4.50", {"name": "Spoon"}),
            owner=Owner("42", 90 * 86400),
            limits=Limits(),
        )

    products["sku-1"] = Hooked(products["sku-1"])
    Hooked.hook = other_device
    response = client.post("/order", json={"token": token})
    assert response.status_code == 409, "charged for a cart the token does not name"


def test_eager_leaves_a_blueprints_static_files_alone(cart_store, products, round_trips, tmp_path):
    (tmp_path / "theme.css").write_text("body{}")
    app, carts = build_app(cart_store, products, CART_RESTORE="eager")
    app.register_blueprint(
        Blueprint("theme", __name__, static_folder=str(tmp_path), static_url_path="/theme")
    )
    client = app.test_client()
    add(client, "sku-1", 1)
    now = carts.clock()
    carts.clock = lambda: now + 31  # past the sync window
    round_trips.reset()
    response = client.get("/theme/theme.css")
    assert round_trips.value == 0
    assert response.headers.getlist("Set-Cookie") == []
