"""The sync window and store round trips, counted on the real servers.

A round trip is one request to Redis (a command, a script or a pipeline: counted where the
client sends it) or one SQL transaction (counted by SQLAlchemy's ``begin`` event; a
transaction is a few statements on the wire, which `Counter.statements` also counts).
"""

from __future__ import annotations

import base64
import json
import secrets
from decimal import Decimal
from typing import Any

import pytest

from flask_cart.stores.base import CartKey
from tests.flask.shop import add, build_app, guest_id_of


def login(client: Any, user_id: str = "42") -> None:
    assert client.post(f"/login/{user_id}").status_code == 200


def trips(round_trips: Any, client: Any, method: str, path: str, **kwargs: Any) -> int:
    round_trips.reset()
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == 200, response.data
    return int(round_trips.value)


def test_round_trips_per_request_kind(app, carts, cart_store, round_trips):
    warm = app.test_client()
    add(warm, "sku-1")  # loads the Redis scripts, opens a pooled connection
    warm.patch("/cart/items/sku-1", json={"quantity": 2})
    warm.delete("/cart/items/sku-1")
    warm.delete("/cart")
    client = app.test_client()
    counts = {
        "page that never touches the cart": trips(round_trips, client, "GET", "/"),
        "new guest reads the cart": trips(round_trips, client, "GET", "/cart"),
        "first add": trips(
            round_trips, client, "POST", "/cart/items", json={"product_id": "sku-1"}
        ),
        "add": trips(round_trips, client, "POST", "/cart/items", json={"product_id": "sku-2"}),
        "read inside the window": trips(round_trips, client, "GET", "/cart"),
        "template read inside the window": trips(round_trips, client, "GET", "/badge"),
        "set quantity": trips(
            round_trips, client, "PATCH", "/cart/items/sku-1", json={"quantity": 3}
        ),
        "remove line": trips(round_trips, client, "DELETE", "/cart/items/sku-2"),
        "page after a change": trips(round_trips, client, "GET", "/"),
    }
    now = carts.clock()
    carts.clock = lambda: now + 31
    counts["read after the window"] = trips(round_trips, client, "GET", "/cart")
    counts["read again, new window"] = trips(round_trips, client, "GET", "/cart")
    counts["clear"] = trips(round_trips, client, "DELETE", "/cart")
    assert counts == {
        "page that never touches the cart": 0,
        "new guest reads the cart": 0,
        "first add": 1,
        "add": 1,
        "read inside the window": 0,
        "template read inside the window": 0,
        "set quantity": 1,
        "remove line": 1,
        "page after a change": 0,
        "read after the window": 1,
        "read again, new window": 0,
        "clear": 1,
    }


def test_round_trips_for_a_customer(app, cart_store, round_trips):
    add(app.test_client(), "sku-1")
    client = app.test_client()
    login(client)
    assert trips(round_trips, client, "GET", "/") == 0
    assert trips(round_trips, client, "GET", "/cart") == 0  # the login view read it
    assert trips(round_trips, client, "POST", "/cart/items", json={"product_id": "sku-1"}) == 1
    assert trips(round_trips, client, "GET", "/cart") == 0


@pytest.mark.parametrize(
    "store_kind",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_a_sql_change_is_one_transaction(app, cart_store, round_trips, store_kind):
    client = app.test_client()
    add(client, "sku-1")
    round_trips.reset()
    add(client, "sku-1")
    assert round_trips.value == 1
    assert 1 <= round_trips.statements <= 3  # upsert-and-lock, update; no extra read


def test_cross_device_within_the_window(app, carts, cart_store):
    laptop, phone = app.test_client(), app.test_client()
    login(laptop)
    login(phone)
    add(laptop, "sku-1")
    assert phone.get("/cart").json["quantity"] == 0  # phone's copy: checked at login
    now = carts.clock()
    carts.clock = lambda: now + 30
    assert phone.get("/cart").json["quantity"] == 1  # at most CART_SYNC_SECONDS later
    # A change is never computed from the cached copy: both devices' adds survive.
    add(phone, "sku-1", 2)
    add(laptop, "sku-2")
    assert laptop.get("/cart").json["quantity"] == 4
    carts.clock = lambda: now + 61
    assert phone.get("/cart").json["quantity"] == 4


def test_cross_device_with_no_window(cart_store, products):
    app, _ = build_app(cart_store, products, CART_SYNC_SECONDS=0)
    laptop, phone = app.test_client(), app.test_client()
    login(laptop)
    login(phone)
    add(laptop, "sku-1")
    assert phone.get("/cart").json["quantity"] == 1
    assert phone.get_cookie("cart_sync") is None


def test_big_carts_are_not_kept_in_a_cookie(cart_store, products, round_trips):
    for n in range(80):
        products[f"p-{n:02}"] = {"unit_cost": "1.25", "name": secrets.token_urlsafe(24)}
    app, _ = build_app(cart_store, products)
    client = app.test_client()
    for n in range(80):
        assert add(client, f"p-{n:02}").status_code == 200
        cookie = client.get_cookie("cart_sync")
        assert cookie is None or len(cookie.value) <= 3000
    assert client.get_cookie("cart_sync") is None
    assert trips(round_trips, client, "GET", "/cart") == 1  # served from the store
    assert client.get("/cart").json["count"] == 80


def test_snapshot_cookie_flags_and_lifetime(client):
    """The snapshot is trusted for the 30 s window, but the browser keeps it as long as a
    guest cart lives (30 days): a browser that dropped it after the window would have no
    copy to show while the store is down."""
    response = add(client, "sku-1")
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("cart_sync="))
    parts = [p.strip() for p in header.split(";")]
    assert {"HttpOnly", "Path=/", "SameSite=Lax", f"Max-Age={30 * 86400}"} <= set(parts)


@pytest.mark.parametrize("value", ["forged", "x.y", ".eJyrVkrLz1eyUkpKLFKqBQAdegQ0.bad"])
def test_forged_snapshots_are_ignored(app, client, cart_store, round_trips, value):
    add(client, "sku-1")
    client.set_cookie("cart_sync", value)
    assert trips(round_trips, client, "GET", "/cart") == 1
    assert client.get("/cart").json["quantity"] == 1


def test_a_snapshot_of_another_owner_is_not_served(app, cart_store, round_trips):
    client = app.test_client()
    login(client)
    add(client, "sku-1", 2)
    snapshot = client.get_cookie("cart_sync").value
    client.post("/logout")
    assert client.get_cookie("cart_sync") is None
    client.set_cookie("cart_sync", snapshot)  # replayed: it names the customer's cart
    assert client.get("/cart").json["quantity"] == 0
    other = app.test_client()
    other.set_cookie("cart_sync", snapshot)
    assert other.get("/cart").json["quantity"] == 0


def test_the_store_wins_after_the_window(app, carts, cart_store):
    client = app.test_client()
    add(client, "sku-1", 2)
    guest = guest_id_of(client)
    # Someone (another tab, an admin) changes the stored cart behind the browser's back.
    from flask_cart.lines import Limits, Owner

    cart_store.set_quantity(CartKey(guest), "sku-1", 5, owner=Owner(None, 3600), limits=Limits())
    assert client.get("/cart").json["quantity"] == 2
    now = carts.clock()
    carts.clock = lambda: now + 31
    assert client.get("/cart").json["quantity"] == 5


def _snapshot_rows(client: Any) -> list[Any]:
    value = client.get_cookie("cart_sync").value
    payload = value.rsplit(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[5]


def test_a_cart_served_from_the_snapshot_answers_what_the_change_answered(
    app, client, products, round_trips
):
    """The snapshot leaves out the flags at their usual values (a line on sale, priced as
    added), and puts them back on reading: the view served from it is the change's answer,
    a line whose price moved and one no longer sold included."""
    for product_id in ("sku-1", "sku-2", "sku-3"):
        add(client, product_id)
    products["sku-2"]["unit_cost"] = Decimal("5.25")
    del products["sku-3"]
    answer = add(client, "sku-1").json
    flags = {i["product_id"]: (i["price_changed"], i["available"]) for i in answer["items"]}
    assert flags == {"sku-1": (False, True), "sku-2": (True, True), "sku-3": (False, False)}
    rows = {row[0]: row[3] for row in _snapshot_rows(client)}
    assert rows["sku-1"] == {"name": "Mug"}  # the usual flags are not in the cookie
    assert trips(round_trips, client, "GET", "/cart") == 0
    assert client.get("/cart").json == answer


def test_a_snapshot_gives_back_each_lines_details_in_their_order():
    """Reading a snapshot puts the flags it left out back where they stood."""
    from flask_cart.lines import CartState, make_line
    from flask_cart.sync import Entry, decode_entry, encode_entry

    details = [
        {"name": "Mug", "price_changed": False, "available": True, "colour": "red"},
        {"price_changed": False, "available": True},
        {"name": "Plate", "price_changed": True, "available": True},
        {"price_changed": False, "available": False, "unavailable_reason": "unknown_product"},
        {"name": "Bowl"},
        {"available": True, "name": "Jug", "price_changed": False},
    ]
    lines = {f"p{n}": make_line(f"p{n}", n + 1, "1.50", d) for n, d in enumerate(details)}
    entry = Entry("guest-1", 1700000000.0, CartState(lines=lines, version=3))
    encoded = json.loads(json.dumps(encode_entry(entry)))
    assert [len(row) for row in encoded[5]] == [5, 5, 4, 4, 4, 4]
    again = decode_entry(encoded).state.lines
    assert [list(again[pid].extra.items()) for pid in lines] == [list(d.items()) for d in details]


def test_the_snapshot_text_is_the_json_of_its_rows_for_every_kind_of_line():
    """entry_json writes the usual lines as text: byte for byte the JSON of encode_entry,
    and read back as the same lines, whatever the details hold."""
    from datetime import datetime, timezone

    from flask_cart.lines import CartState, Line
    from flask_cart.sync import (
        Entry,
        _compact_json,
        decode_entry,
        encode_entry,
        entry_json,
    )

    usual = {"price_changed": False, "available": True}
    details = [
        {"name": "Mug", **usual},
        {"name": 'Say "hi" \\ \u2028 Caf\u00e9 \u2615', **usual},
        {"name": "Mug", "available": True, "price_changed": False},  # other order
        {"name": "Mug", "price_changed": True, "available": True},
        {"name": "Gone", "price_changed": False, "available": False, "unavailable_reason": "x"},
        {"name": 7, **usual},
        {**usual},
        {"name": "Mug", **usual, "slug": "mug"},
        {"colour": "red", "name": "Mug", **usual},
        {},
    ]
    lines = {
        f'p{i}\u00e9"': Line(f'p{i}\u00e9"', i + 1, f"{i}.99", extra)
        for i, extra in enumerate(details)
    }
    moment = datetime(2026, 12, 7, 10, 0, 0, 123000, tzinfo=timezone.utc)
    for state in (
        CartState(lines=lines, version=9, updated_at=moment, customer_id="c\u00e9"),
        CartState(),
    ):
        entry = Entry("owner-1", 1796682243.398, state)
        text = entry_json(entry)
        assert text == _compact_json(encode_entry(entry))
        back = decode_entry(json.loads(text)).state
        assert back.lines == state.lines
        assert [list(line.extra) for line in back.lines.values()] == [
            list(line.extra) for line in state.lines.values()
        ]
