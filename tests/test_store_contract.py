"""The store contract: every Cart method behaves the same on SQLite, PostgreSQL, MariaDB and
Redis."""

from __future__ import annotations

import gc
from decimal import Decimal

import pytest

from flask_cart import Cart
from flask_cart.errors import (
    CartClosed,
    LineLimitExceeded,
    LineNotFound,
    QuantityLimitExceeded,
)
from flask_cart.lines import Limits, Line, Owner
from flask_cart.stores.base import (
    MAX_MERGE_MARKERS,
    CartKey,
    merge_marker,
)
from tests.helpers import expire_now, raw_dump


def test_add_creates_and_adds_to_a_line(store):
    cart = Cart("u1", store)
    cart.add("sku-1", "9.99", 2, name="Mug", color="blue")
    cart.add("sku-1", Decimal("9.99"))
    assert cart.get() == {
        "sku-1": {"unit_cost": Decimal("9.99"), "quantity": 3, "name": "Mug", "color": "blue"}
    }
    assert cart.get_product("sku-1")["quantity"] == 3
    assert isinstance(cart.get_product("sku-1")["unit_cost"], Decimal)


def test_add_takes_the_latest_price_and_details(store):
    cart = Cart("u1", store)
    cart.add("sku-1", "9.99", 1, name="Mug")
    cart.add("sku-1", "8.50", 1, name="Mug (sale)")
    assert cart.get_product("sku-1") == {
        "unit_cost": Decimal("8.50"),
        "quantity": 2,
        "name": "Mug (sale)",
    }


def test_lines_keep_the_order_they_were_added_in(store):
    cart = Cart("u1", store)
    for product in ["c", "a", "b", "z", "m"]:
        cart.add(product, 1)
    cart.add("a", 1)
    assert list(cart.get()) == ["c", "a", "b", "z", "m"]


def test_update_sets_and_zero_removes(store):
    cart = Cart("u1", store)
    cart.add("sku-1", 5, 2)
    cart.update("sku-1", 7)
    assert cart.get_product("sku-1")["quantity"] == 7
    cart.update("sku-1", 0)
    assert not cart.contains("sku-1")
    assert cart.get_product("sku-1") == {}


def test_update_of_a_missing_line_raises_and_changes_nothing(store):
    cart = Cart("u1", store)
    cart.add("sku-1", 5)
    before = raw_dump(store, cart.key)
    with pytest.raises(LineNotFound):
        cart.update("sku-2", 3)
    assert raw_dump(store, cart.key) == before


def test_remove_reports_whether_the_line_was_there(store):
    cart = Cart("u1", store)
    cart.add("sku-1", 5)
    assert cart.remove("sku-1") is True
    assert cart.remove("sku-1") is False
    assert Cart("nobody", store).remove("sku-1") is False
    assert raw_dump(store, CartKey("nobody")) in ([], ([], False))


def test_totals_are_exact_decimals(store):
    cart = Cart("u1", store)
    cart.add("a", "0.10", 3)
    cart.add("b", "19.99", 2)
    cart.add("c", 7)
    assert cart.total_cost() == Decimal("47.28")
    assert cart.count() == 3
    assert cart.quantity() == 6


def test_empty_cart_reads(store):
    cart = Cart("nobody", store)
    assert cart.get() == {}
    assert cart.total_cost() == Decimal(0)
    assert (cart.count(), cart.quantity(), cart.get_ttl()) == (0, 0, 0)
    assert not cart.contains("x")


def test_instances_never_touch_each_other(store):
    cart = Cart("u1", store)
    wishlist = Cart("u1", store, instance="wishlist")
    cart.add("sku-1", 5, 2)
    wishlist.add("sku-2", 3)
    assert list(cart.get()) == ["sku-1"]
    assert list(wishlist.get()) == ["sku-2"]
    cart.destroy()
    assert list(wishlist.get()) == ["sku-2"]


def test_ttl_is_set_on_write_and_can_be_changed(store):
    cart = Cart("u1", store, ttl=3600)
    cart.add("sku-1", 5)
    assert 3590 <= cart.get_ttl() <= 3600
    assert cart.set_ttl(120) is True
    assert 110 <= cart.get_ttl() <= 120
    cart.add("sku-1", 5)
    assert cart.get_ttl() > 3500  # every write renews the lifetime
    assert Cart("nobody", store).set_ttl(10) is False


def test_an_expired_cart_reads_as_empty_and_starts_afresh(store):
    cart = Cart("u1", store)
    cart.add("sku-1", 5, 3)
    expire_now(store, cart.key)
    assert cart.get() == {}
    assert not cart.refresh().exists
    assert cart.checkout()["items"] == {}
    cart.add("sku-2", 1)
    assert list(cart.get()) == ["sku-2"]


def test_clear_keeps_the_cart_and_destroy_deletes_it(store):
    cart = Cart("u1", store)
    cart.add("sku-1", 5)
    version = cart.state.version
    cart.clear()
    assert cart.get() == {}
    assert cart.refresh().version > version
    cart.destroy()
    assert not cart.refresh().exists
    Cart("nobody", store).clear()
    assert not Cart("nobody", store).refresh().exists


def test_versions_grow_with_every_change_and_not_on_refusals(store):
    cart = Cart("u1", store, limits=Limits(max_line_quantity=5, max_lines=2))
    versions = []
    for step in (
        lambda: cart.add("a", 1),
        lambda: cart.add("a", 1, 2),
        lambda: cart.update("a", 4),
        lambda: cart.add("b", 1),
        lambda: cart.remove("b"),
    ):
        step()
        versions.append(cart.refresh().version)
    assert versions == sorted(set(versions))
    with pytest.raises(QuantityLimitExceeded):
        cart.add("a", 1, 2)
    assert cart.refresh().version == versions[-1]


def test_caps_refuse_and_change_nothing(store):
    cart = Cart("u1", store, limits=Limits(max_line_quantity=10, max_lines=3))
    cart.add("a", 1, 9)
    cart.add("b", 1)
    cart.add("c", 1)
    before = raw_dump(store, cart.key)
    with pytest.raises(QuantityLimitExceeded, match="10 per line"):
        cart.add("a", 1, 2)
    with pytest.raises(LineLimitExceeded, match="at most 3 lines"):
        cart.add("d", 1)
    with pytest.raises(QuantityLimitExceeded):
        cart.update("a", 11)
    assert raw_dump(store, cart.key) == before
    cart.add("a", 1, 1)  # exactly at the cap is fine
    assert cart.get_product("a")["quantity"] == 10


def test_default_caps_are_999_per_line_and_100_lines(store):
    cart = Cart("u1", store)
    cart.add("a", 1, 999)
    with pytest.raises(QuantityLimitExceeded):
        cart.add("a", 1)
    for n in range(99):
        cart.add(f"p{n}", 1)
    with pytest.raises(LineLimitExceeded):
        cart.add("one-too-many", 1)
    assert cart.count() == 100


def test_copy_replaces_the_target_lines(store):
    cart = Cart("u1", store)
    cart.add("a", 2, 2, note="gift")
    cart.add("b", 3)
    other = Cart("u2", store)
    other.add("z", 1)
    copied = cart.copy("u2")
    assert copied.get() == cart.get()
    assert Cart("u2", store).get() == cart.get()
    assert cart.count() == 2  # the original stays


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("sum", {"shared": 5, "mine": 1, "theirs": 4}),
        ("max", {"shared": 3, "mine": 1, "theirs": 4}),
        ("guest", {"shared": 2, "mine": 1, "theirs": 4}),
        ("customer", {"shared": 3, "mine": 1, "theirs": 4}),
    ],
)
def test_merge_strategies(store, strategy, expected):
    customer = Cart("c1", store, customer_id="1")
    customer.add("shared", 5, 3)
    customer.add("mine", 1)
    guest = Cart("g1", store)
    guest.add("shared", 5, 2)
    guest.add("theirs", 2, 4)
    customer.merge(guest, strategy)
    assert {pid: d["quantity"] for pid, d in customer.get().items()} == expected
    assert not guest.refresh().exists


def test_merge_is_clamped_to_the_caps_and_stock(store):
    limits = Limits(max_line_quantity=10, max_lines=3)
    customer = Cart("c1", store, customer_id="1", limits=limits)
    customer.add("a", 1, 8)
    customer.add("b", 1)
    guest = Cart("g1", store, limits=limits)
    guest.add("a", 1, 9)
    guest.add("c", 1, 5)
    guest.add("d", 1, 1)
    moved = customer.merge(guest, "sum", line_caps={"c": 2})
    assert {pid: d["quantity"] for pid, d in customer.get().items()} == {"a": 10, "b": 1, "c": 2}
    assert moved == {"a": 2, "c": 2}


@pytest.mark.parametrize("strategy", ["sum", "max", "guest", "customer"])
def test_a_merge_never_deletes_the_customers_own_line(store, strategy):
    """Stock now 0: the guest's units are not added, and the customer's own line stays."""
    customer = Cart("c1", store, customer_id="1")
    customer.add("gone", 1, 3)
    customer.add("low", 1, 4)
    guest = Cart("g1", store)
    guest.add("gone", 1, 2)
    guest.add("low", 1, 5)
    customer.merge(guest, strategy, line_caps={"gone": 0, "low": 1})
    quantities = {pid: d["quantity"] for pid, d in customer.get().items()}
    if strategy == "guest":  # the guest's quantity wins where it is lower, never 0
        assert quantities == {"gone": 2, "low": 4}
    else:
        assert quantities == {"gone": 3, "low": 4}


def test_merge_is_idempotent_after_a_crash_before_the_guest_is_deleted(store):
    customer = Cart("c1", store, customer_id="1")
    customer.add("a", 1, 1)
    guest = Cart("g1", store)
    guest.add("a", 1, 2)
    guest.add("b", 1, 1)
    # Simulate the crash: seal and merge happened, the delete did not.
    sealed = store.seal(guest.key)
    store.merge(
        customer.key,
        sealed.lines,
        strategy="sum",
        marker=merge_marker(guest.key, sealed),
        owner=customer.owner,
        limits=customer.limits,
    )
    with pytest.raises(CartClosed):
        guest.add("c", 1)  # a sealed guest cart takes no more changes
    customer.merge(guest, "sum")  # the re-run
    customer.merge(guest, "sum")  # and once more, after the guest is gone
    assert {pid: d["quantity"] for pid, d in customer.get().items()} == {"a": 3, "b": 1}
    assert not guest.refresh().exists


def test_rekey_moves_a_guest_cart_to_a_new_customer(store):
    guest = Cart("g1", store)
    guest.add("a", 1, 2)
    state = store.rekey(
        guest.key,
        CartKey("customer:9"),
        owner=Cart("x", store, customer_id="9").owner,
        limits=Limits(),
    )
    assert {pid: line.quantity for pid, line in state.lines.items()} == {"a": 2}
    assert state.customer_id == "9"
    assert not guest.refresh().exists


def test_checkout_returns_the_snapshot_and_removes_the_cart(store):
    cart = Cart("u1", store, customer_id="7")
    cart.add("a", "2.50", 2, name="Tea")
    snap = cart.checkout()
    assert snap["items"] == {
        "a": {
            "unit_cost": Decimal("2.50"),
            "quantity": 2,
            "name": "Tea",
            "line_total": Decimal("5.00"),
        }
    }
    assert snap["total_cost"] == Decimal("5.00")
    assert (snap["count"], snap["quantity"], snap["customer_id"]) == (1, 2, "7")
    assert not cart.refresh().exists
    assert cart.checkout()["items"] == {}


def test_garbage_collection_never_touches_the_store(store):
    cart = Cart("u1", store)
    cart.add("a", 1, 2)
    del cart
    gc.collect()
    assert Cart("u1", store).get_product("a")["quantity"] == 2


def test_reads_are_fresh_unless_a_state_is_served(store):
    first, second = Cart("u1", store), Cart("u1", store)
    first.add("a", 1)
    second.add("a", 1)
    assert first.get_product("a")["quantity"] == 2
    first.serve_cached(first.state)
    second.add("a", 1)
    assert first.get_product("a")["quantity"] == 2  # served from the known state
    assert first.refresh().lines["a"].quantity == 3


def test_a_guest_cart_made_again_after_a_merge_merges_again(store):
    customer = Cart("c1", store, customer_id="1")
    guest = Cart("g1", store)
    guest.add("a", 1)
    customer.merge(guest)
    guest.add("a", 1)  # same identifier, a new cart: its version count starts over
    customer.merge(guest)
    assert customer.get_product("a")["quantity"] == 2


def test_quantities_up_to_the_largest_cap_are_exact(store):
    big = 1_000_000_000
    limits = Limits(max_line_quantity=big, max_lines=10)
    cart = Cart("u1", store, limits=limits)
    cart.add("a", 1, big - 1)
    cart.add("a", 1, 1)
    cart.add("b", 1, big)
    cart.update("b", big - 7)
    guest = Cart("g1", store, limits=limits)
    guest.add("b", 1, big)
    guest.add("c", 1, big)
    cart.merge(guest, "sum")
    assert {pid: line.quantity for pid, line in cart.refresh().lines.items()} == {
        "a": big,
        "b": big,
        "c": big,
    }


def test_take_of_a_sealed_cart_raises_and_removes_nothing(store):
    """A checkout racing a merge in progress (the cart is sealed) takes nothing: the lines
    go to the merge's target once, never to both an order and the target."""
    cart = Cart("g1", store)
    cart.add("a", 1, 2)
    store.seal(cart.key)
    before = raw_dump(store, cart.key)
    with pytest.raises(CartClosed):
        store.take(cart.key)
    with pytest.raises(CartClosed):
        cart.checkout()
    assert raw_dump(store, cart.key) == before
    customer = Cart("c1", store, customer_id="1")
    customer.merge(cart)
    assert customer.get_product("a")["quantity"] == 2


# -- identifiers are compared byte for byte (no collation folds case, accents or spaces) ---


def test_identifiers_compare_byte_for_byte(store):
    identifiers = ["customer:aB3x", "customer:Ab3X", "jose", "josé", "jose "]
    for n, identifier in enumerate(identifiers, 1):
        Cart(identifier, store).add("sku", 1, n)
    for n, identifier in enumerate(identifiers, 1):
        cart = Cart(identifier, store)
        assert cart.get_product("sku")["quantity"] == n, identifier
        assert cart.state.version == 1, identifier
    Cart("jose", store).destroy()
    assert Cart("josé", store).get_product("sku")["quantity"] == 4
    assert Cart("jose ", store).get_product("sku")["quantity"] == 5


def test_instance_names_compare_byte_for_byte(store):
    Cart("u1", store, instance="Wishlist").add("a", 1)
    Cart("u1", store, instance="wishlist ").add("b", 1)
    assert Cart("u1", store, instance="wishlist").get() == {}
    assert list(Cart("u1", store, instance="Wishlist").get()) == ["a"]
    assert list(Cart("u1", store, instance="wishlist ").get()) == ["b"]


# -- a change resent with the same op id is applied once --------------------------------------

OWNER = Owner("7", 3600)
LIMITS = Limits()


def _add(store, key, op, product="a"):
    return store.add(key, Line(product, 1, "1.00"), owner=OWNER, limits=LIMITS, op=op)


def _quantities(state):
    return {pid: line.quantity for pid, line in state.lines.items()}


def test_a_resent_add_is_applied_once(store):
    key = CartKey("customer:7")
    first = _add(store, key, "op-1")
    again = _add(store, key, "op-1")
    assert _quantities(again) == {"a": 1}
    assert again.version == first.version
    assert _quantities(store.load(key)) == {"a": 1}


def test_a_resent_set_quantity_is_applied_once(store):
    key = CartKey("customer:7")
    _add(store, key, "op-1")
    store.set_quantity(key, "a", 5, owner=OWNER, limits=LIMITS, op="op-2")
    store.set_quantity(key, "a", 7, owner=OWNER, limits=LIMITS, op="op-3")
    state = store.set_quantity(key, "a", 5, owner=OWNER, limits=LIMITS, op="op-2")
    assert _quantities(state) == {"a": 7}
    assert _quantities(store.load(key)) == {"a": 7}


def test_a_resent_remove_is_applied_once_and_answers_true(store):
    key = CartKey("customer:7")
    _add(store, key, "op-1")
    assert store.remove(key, "a", owner=OWNER, op="op-2")[0] is True
    _add(store, key, "op-3")
    removed, state = store.remove(key, "a", owner=OWNER, op="op-2")
    assert removed is True
    assert _quantities(state) == {"a": 1}
    assert _quantities(store.load(key)) == {"a": 1}


def test_a_resent_clear_is_applied_once(store):
    key = CartKey("customer:7")
    _add(store, key, "op-1")
    store.clear(key, owner=OWNER, op="op-2")
    _add(store, key, "op-3", product="b")
    state = store.clear(key, owner=OWNER, op="op-2")
    assert _quantities(state) == {"b": 1}
    assert _quantities(store.load(key)) == {"b": 1}


def test_remembered_ops_are_not_bounded_by_count(store):
    key = CartKey("customer:7")
    _add(store, key, "first")
    for n in range(40):
        _add(store, key, f"other-{n}")
    assert _add(store, key, "first").lines["a"].quantity == 41  # remembered
    for n in range(2):
        _add(store, key, f"later-{n}")
    # Many other changes since: "first" is still remembered (for KEY_SECONDS).
    assert _add(store, key, "first").lines["a"].quantity == 43


# -- re-keying at registration: a sealed or expired guest cart -----------------------------


def test_rekey_of_a_sealed_guest_cart_merges_it_once(store):
    guest = Cart("g1", store)
    guest.add("a", 1, 2)
    store.seal(guest.key)  # a merge interrupted after the seal
    target, owner = CartKey("customer:9"), Owner("9", 3600)
    state = store.rekey(guest.key, target, owner=owner, limits=LIMITS)
    assert _quantities(state) == {"a": 2}
    assert not state.sealed
    customer = Cart("customer:9", store, customer_id="9")
    customer.add("b", 1)  # the new customer's cart takes changes
    assert not guest.refresh().exists
    store.rekey(guest.key, target, owner=owner, limits=LIMITS)  # again: nothing to move
    assert _quantities(customer.refresh()) == {"a": 2, "b": 1}
    assert not customer.state.sealed


def test_rekey_of_a_merged_sealed_guest_cart_applies_the_merge_once(store):
    guest = Cart("g1", store)
    guest.add("a", 1, 2)
    sealed = store.seal(guest.key)
    target, owner = CartKey("customer:9"), Owner("9", 3600)
    store.merge(
        target,
        sealed.lines,
        strategy="sum",
        marker=merge_marker(guest.key, sealed),
        owner=owner,
        limits=LIMITS,
    )  # ... and the merge ran, but the guest cart was not deleted
    state = store.rekey(guest.key, target, owner=owner, limits=LIMITS)
    assert _quantities(state) == {"a": 2}
    assert not guest.refresh().exists


def test_rekey_of_an_expired_guest_cart_is_no_cart(store):
    guest = Cart("g1", store)
    guest.add("a", 1, 2)
    expire_now(store, guest.key)
    state = store.rekey(guest.key, CartKey("customer:9"), owner=Owner("9", 3600), limits=LIMITS)
    assert not state.exists and not state.lines
    assert not Cart("customer:9", store).refresh().exists
    assert not guest.refresh().exists


# -- merge markers are bounded ----------------------------------------------------------------


def test_merge_markers_are_bounded_to_the_most_recent(store):
    customer = Cart("c1", store, customer_id="1")
    markers = []
    for n in range(MAX_MERGE_MARKERS + 5):
        guest = Cart(f"g{n}", store)
        guest.add("a", 1)
        markers.append(merge_marker(guest.key, store.seal(guest.key)))
        customer.merge(guest)
    state = customer.refresh()
    assert state.lines["a"].quantity == MAX_MERGE_MARKERS + 5
    assert state.merged == frozenset(markers[-MAX_MERGE_MARKERS:])


@pytest.mark.redis
def test_redis_scripts_write_integers_exactly_past_1e14(make_store):
    """Lua prints a number of 1e14 or more as "1e+14": the scripts format integers
    themselves, so even a quantity past the Limits bounds stays readable."""
    store = make_store("redis")
    limits = Limits()
    object.__setattr__(limits, "max_line_quantity", 10**15)  # past the bound on purpose
    key, owner = CartKey("u1"), Cart("u1", store).owner
    store.add(key, Line("a", 10**14, "1"), owner=owner, limits=limits)
    store.add(key, Line("a", 10**14, "1"), owner=owner, limits=limits)
    store.set_quantity(key, "a", 3 * 10**14, owner=owner, limits=limits)
    store.add(key, Line("a", 1, "1"), owner=owner, limits=limits)
    assert store.load(key).lines["a"].quantity == 3 * 10**14 + 1


def test_a_line_read_twice_never_shares_its_details(store):
    """Reading the same lines twice gives details that are equal but not the same objects:
    a caller changing one read's details changes neither the store nor the next read."""
    cart = Cart("u1", store)
    cart.add("a", 1, 1, colour="red", sizes=["S", "M"])
    cart.add("b", 1, 1, colour="red", sizes=["S", "M"])
    first = cart.refresh()
    first.lines["a"].extra["colour"] = "blue"  # type: ignore[index]
    first.lines["a"].extra["sizes"].append("XL")  # type: ignore[index]
    again = cart.refresh()
    assert again.lines["a"].extra == {"colour": "red", "sizes": ["S", "M"]}
    assert again.lines["b"].extra == {"colour": "red", "sizes": ["S", "M"]}
    cart.add("c", 1, 1, colour="red")
    cart.add("d", 1, 1, colour="red")
    third = cart.refresh()
    third.lines["c"].extra["colour"] = "green"  # type: ignore[index]
    assert cart.refresh().lines["d"].extra == {"colour": "red"}
    assert cart.refresh().lines["c"].extra == {"colour": "red"}
