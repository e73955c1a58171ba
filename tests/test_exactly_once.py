"""Change ids (Idempotency-Keys) kept for 24 h whatever happens to the cart, a reused id
refused, ids and signed-link markers carried by a merge, and tombstones: on SQLite,
PostgreSQL, MariaDB and Redis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from flask_cart import Cart
from flask_cart.errors import CartClosed, IdempotencyKeyReused
from flask_cart.lines import Limits, Line, Owner
from flask_cart.stores.base import (
    KEY_SECONDS,
    MAX_MERGE_MARKERS,
    TOMBSTONE_SECONDS,
    CartKey,
    is_tombstone,
)
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.helpers import raw_dump
from tests.test_redis_cluster import cluster, cluster_nodes, cluster_store  # noqa: F401

OWNER = Owner("7", 3600)
GUEST = Owner(None, 3600)
LIMITS = Limits()


def _add(store, key, op, product="a", quantity=1, owner=OWNER):
    return store.add(key, Line(product, quantity, "1.00"), owner=owner, limits=LIMITS, op=op)


def _quantities(state):
    return {pid: line.quantity for pid, line in state.lines.items()}


def _records(store, key):
    """The change-id records the store keeps for the cart: op id -> expiry (UTC)."""
    if isinstance(store, RedisStore):
        raw = store.client.hgetall(store.ops_key(key))
        return {
            k.decode(): datetime.fromtimestamp(int(v.split(b"|")[0]) / 1000, timezone.utc)
            for k, v in raw.items()
            if k != b"_c"
        }
    t = store.keys_table
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.op, t.c.expires_at).where(
                t.c.identifier == key.identifier, t.c.instance == key.instance
            )
        ).all()
    return {row.op: row.expires_at for row in rows}


def test_a_key_is_honoured_after_41_other_keyed_changes(store):
    """A phone replays an offline queue of 41 keyed adds: each is applied once."""
    key = CartKey("customer:7")
    for n in range(41):
        _add(store, key, f"queued-{n}")
    for n in range(41):
        assert _add(store, key, f"queued-{n}").replayed
    assert _quantities(store.load(key)) == {"a": 41}


def test_a_key_is_recorded_for_24_hours_and_a_change_without_one_records_nothing(store):
    key = CartKey("customer:7")
    _add(store, key, None)
    store.clear(key, owner=OWNER)
    assert _records(store, key) == {}
    before = datetime.now(timezone.utc)
    _add(store, key, "k1")
    expiry = _records(store, key)["k1"]
    assert before + timedelta(seconds=KEY_SECONDS - 60) < expiry
    assert expiry <= datetime.now(timezone.utc) + timedelta(seconds=KEY_SECONDS + 1)
    if isinstance(store, RedisStore):  # the hash outlives its newest record, no longer
        left = store.client.pttl(store.ops_key(key)) / 1000
        assert KEY_SECONDS - 60 < left <= KEY_SECONDS


def test_a_key_is_honoured_after_the_cart_is_checked_out(store):
    key = CartKey("customer:7")
    _add(store, key, "k1", quantity=2)
    store.take(key)
    again = _add(store, key, "k1", quantity=2)
    assert again.replayed and not again.lines
    assert not store.load(key).exists


@pytest.mark.parametrize(
    "change",
    ["another product", "another quantity", "set", "remove", "clear"],
)
def test_a_key_reused_for_another_change_is_refused_and_changes_nothing(store, change):
    key = CartKey("customer:7")
    _add(store, key, "k1", product="a", quantity=2)
    _add(store, key, None, product="b")
    before = raw_dump(store, key), _records(store, key)
    calls = {
        "another product": lambda: _add(store, key, "k1", product="b", quantity=2),
        "another quantity": lambda: _add(store, key, "k1", product="a", quantity=3),
        "set": lambda: store.set_quantity(key, "a", 5, owner=OWNER, limits=LIMITS, op="k1"),
        "remove": lambda: store.remove(key, "a", owner=OWNER, op="k1"),
        "clear": lambda: store.clear(key, owner=OWNER, op="k1"),
    }
    with pytest.raises(IdempotencyKeyReused) as info:
        calls[change]()
    assert (info.value.status, info.value.code) == (422, "idempotency_key_reused")
    assert (raw_dump(store, key), _records(store, key)) == before
    assert _add(store, key, "k1", product="a", quantity=2).replayed  # the same change: a repeat


def test_an_expired_record_is_not_honoured_and_is_swept(store):
    key = CartKey("customer:7")
    owner = Owner("7", 3 * KEY_SECONDS)  # the cart outlives the record

    def _add(store, key, op):
        return store.add(key, Line("a", 1, "1.00"), owner=owner, limits=LIMITS, op=op)

    if isinstance(store, SQLStore):
        real = store.clock
        store.clock = lambda: real() - timedelta(seconds=KEY_SECONDS + 5)
        _add(store, key, "old")
        store.clock = real
    else:
        _add(store, key, "old")
        ops = store.ops_key(key)
        fp = store.client.hget(ops, "old").split(b"|", 1)[1]
        store.client.hset(ops, "old", b"1000|" + fp)  # expired long ago
    assert not _add(store, key, "old").replayed  # 24 h later: a new change
    assert _quantities(store.load(key)) == {"a": 2}
    if isinstance(store, SQLStore):
        store.clock = lambda: real() - timedelta(seconds=KEY_SECONDS + 5)
        _add(store, key, "older")
        store.clock = real
        now = real()
        store.delete_expired(guest_cutoff=now, customer_cutoff=now - timedelta(days=400),
                             batch_size=10)  # fmt: skip
        assert set(_records(store, key)) == {"old"}  # the expired one is gone
    else:
        store.client.hset(store.ops_key(key), "older", b"1000|x")
        _add(store, key, "new")  # a recorded change prunes expired records it meets
        assert set(_records(store, key)) == {"old", "new"}


def test_a_merge_carries_the_guest_carts_keys_and_signed_link_markers(store):
    """A keyed guest add and a signed link, retried after the login merge, are not applied
    again in the customer's cart, even after many other merges."""
    guest_key, customer_key = CartKey("g1"), CartKey("customer:7")
    _add(store, guest_key, "k-guest", quantity=2, owner=GUEST)
    store.merge(
        guest_key,
        {"b": Line("b", 1, "1.00")},
        strategy="add",
        marker="link:abc",
        owner=GUEST,
        limits=LIMITS,
    )
    customer, guest = Cart("customer:7", store, customer_id="7"), Cart("g1", store)
    customer.merge(guest)
    assert _quantities(customer.refresh()) == {"a": 2, "b": 1}
    assert _add(store, customer_key, "k-guest", quantity=2).replayed
    for n in range(MAX_MERGE_MARKERS + 3):  # other logins and links since
        other = Cart(f"g-other-{n}", store)
        other.add("c", 1)
        customer.merge(other)
    again = store.merge(
        customer_key,
        {"b": Line("b", 1, "1.00")},
        strategy="add",
        marker="link:abc",
        owner=OWNER,
        limits=LIMITS,
    )
    assert again.already_merged
    assert _quantities(store.load(customer_key)) == {"a": 2, "b": 1, "c": MAX_MERGE_MARKERS + 3}


@pytest.mark.parametrize("tombstone", [False, True])
def test_rekey_carries_the_keys_and_leaves_a_tombstone_when_asked(store, tombstone):
    guest_key, customer_key = CartKey("g1"), CartKey("customer:9")
    _add(store, guest_key, "k-guest", quantity=2, owner=GUEST)
    state = store.rekey(
        guest_key, customer_key, owner=Owner("9", 3600), limits=LIMITS, tombstone=tombstone
    )
    assert _quantities(state) == {"a": 2}
    assert _add(store, customer_key, "k-guest", quantity=2, owner=Owner("9", 3600)).replayed
    left = store.load(guest_key)
    assert is_tombstone(left) is tombstone
    assert not left.exists  # a tombstone is no cart: only changes see it


def test_a_tombstone_is_sealed_empty_short_lived_and_refuses_changes(store):
    guest_key, customer_key = CartKey("g1"), CartKey("customer:7")
    _add(store, guest_key, None, owner=GUEST)
    store.seal(guest_key)
    store.bury(guest_key, customer_key)
    state = store.load(guest_key)
    assert is_tombstone(state) and state.sealed and not state.lines and not state.exists
    assert 0 < store.get_ttl(guest_key) <= TOMBSTONE_SECONDS
    with pytest.raises(CartClosed):
        _add(store, guest_key, None, owner=GUEST)
    with pytest.raises(CartClosed):
        store.take(guest_key)
    assert is_tombstone(store.load(guest_key))


# -- Redis Cluster: the ops hash shares the cart's slot; a merge carries across slots -------


@pytest.mark.redis
def test_keys_and_tombstones_on_a_redis_cluster(cluster_store, cluster):  # noqa: F811
    store = cluster_store
    guest_key, customer_key = CartKey("guest-1"), CartKey("customer:1")
    assert cluster.keyslot(store.ops_key(guest_key)) == cluster.keyslot(store.key(guest_key))
    _add(store, guest_key, "k-guest", quantity=2, owner=GUEST)
    assert _add(store, guest_key, "k-guest", quantity=2, owner=GUEST).replayed
    with pytest.raises(IdempotencyKeyReused):
        _add(store, guest_key, "k-guest", quantity=3, owner=GUEST)
    customer, guest = Cart("customer:1", store, customer_id="1"), Cart("guest-1", store)
    customer.merge(guest)
    store.bury(guest_key, customer_key)
    assert cluster.keyslot(store.key(guest_key)) != cluster.keyslot(store.key(customer_key))
    assert _add(store, customer_key, "k-guest", quantity=2).replayed
    assert _quantities(store.load(customer_key)) == {"a": 2}
    assert is_tombstone(store.load(guest_key))
    with pytest.raises(CartClosed):
        _add(store, guest_key, None, owner=GUEST)


def test_cleanup_counts_carts_not_key_records(store):
    now = datetime.now(timezone.utc)
    for n in range(3):
        _add(store, CartKey(f"customer:{n}"), f"k-{n}")
    old = now - timedelta(days=400)
    stats = store.cart_stats(now=now, guest_cutoff=old, customer_cutoff=old)
    assert (stats.total, stats.customer, stats.due_total) == (3, 3, 0)
    result = store.delete_expired(guest_cutoff=old, customer_cutoff=old, batch_size=10)
    assert result.total == 0
    if isinstance(store, RedisStore):
        assert result.examined == 3
    assert all(_records(store, CartKey(f"customer:{n}")) for n in range(3))  # not expired
