"""Concurrent changes on real PostgreSQL, MariaDB and Redis: nothing lost, nothing counted twice.

SQLite serialises every writer, so it proves nothing here and is left out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from flask_cart import Cart
from flask_cart.errors import LineNotFound, QuantityLimitExceeded

SERVER_STORES = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=SERVER_STORES)
def server_store(request, make_store):
    return make_store(request.param)


def run_together(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start every worker at the same moment; return the errors they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_eight_threads_adding_to_one_line_lose_nothing(server_store):
    def work() -> None:
        cart = Cart("shared", server_store)
        for _ in range(100):
            cart.add("sku-1", "1.00")

    assert run_together([work] * 8) == []
    cart = Cart("shared", server_store)
    assert cart.get_product("sku-1")["quantity"] == 800
    assert cart.refresh().version == 800


def test_eight_threads_adding_different_products_all_survive(server_store):
    def work(n: int) -> Callable[[], None]:
        def add() -> None:
            cart = Cart("shared", server_store)
            for _ in range(25):
                cart.add(f"sku-{n}", "1.00")

        return add

    assert run_together([work(n) for n in range(8)]) == []
    quantities = {p: d["quantity"] for p, d in Cart("shared", server_store).get().items()}
    assert quantities == {f"sku-{n}": 25 for n in range(8)}


def test_the_line_cap_holds_under_concurrency(server_store):
    def work() -> None:
        cart = Cart("shared", server_store)
        for _ in range(200):
            try:
                cart.add("sku-1", "1.00")
            except QuantityLimitExceeded:
                return

    run_together([work] * 8)
    assert Cart("shared", server_store).get_product("sku-1")["quantity"] == 999


@pytest.mark.parametrize("rounds", [30])
def test_concurrent_update_and_add_end_in_a_serial_outcome(server_store, rounds):
    for n in range(rounds):
        cart = Cart(f"race-{n}", server_store)
        cart.add("x", 1, 5)
        errors = run_together(
            [
                lambda c=cart: c.update("x", 7),
                lambda c=cart: Cart(c.identifier, server_store).add("x", 1),
            ]
        )
        assert errors == []
        # update then add -> 8; add then update -> 7
        assert cart.refresh().lines["x"].quantity in (7, 8)


@pytest.mark.parametrize("rounds", [30])
def test_concurrent_remove_and_update_end_in_a_serial_outcome(server_store, rounds):
    for n in range(rounds):
        cart = Cart(f"race-{n}", server_store)
        cart.add("x", 1, 5)
        errors = run_together(
            [
                lambda c=cart: c.remove("x"),
                lambda c=cart: Cart(c.identifier, server_store).update("x", 9),
            ]
        )
        state = cart.refresh()
        # remove then update -> LineNotFound, no line; update then remove -> no line
        assert "x" not in state.lines
        assert all(isinstance(e, LineNotFound) for e in errors)
        assert state.version == (3 if not errors else 2)


def test_concurrent_merges_of_one_guest_apply_it_once(server_store):
    for n in range(10):
        customer = Cart(f"customer:{n}", server_store, customer_id=str(n))
        customer.add("a", 1, 1)
        guest = Cart(f"guest-{n}", server_store)
        guest.add("a", 1, 2)
        guest.add("b", 1, 3)

        def merge(c=customer, g=guest) -> None:
            Cart(c.identifier, server_store, customer_id=c.customer_id).merge(
                Cart(g.identifier, server_store)
            )

        assert run_together([merge] * 4) == []
        got = {p: d["quantity"] for p, d in customer.get().items()}
        assert got == {"a": 3, "b": 3}
        assert not guest.refresh().exists


def test_concurrent_checkouts_hand_the_lines_to_one_caller(server_store):
    cart = Cart("shared", server_store)
    cart.add("a", "5.00", 2)
    snapshots: list[dict] = []
    run_together([lambda: snapshots.append(Cart("shared", server_store).checkout())] * 4)
    assert sorted(len(s["items"]) for s in snapshots) == [0, 0, 0, 1]
