"""The merge rules of cart links on every store: "add" and "replace", each one write, once
per marker, and a replace racing other changes loses none made after it."""

from __future__ import annotations

import threading
import time

from flask_cart.lines import Limits, Line, Owner, apply_merge
from flask_cart.stores.base import CartKey

OWNER = Owner(None, 3600)
LIMITS = Limits(10, 100)


def line(product_id: str, quantity: int, unit_cost: str = "1.00") -> Line:
    return Line(product_id, quantity, unit_cost, {})


def quantities(state: object) -> dict[str, int]:
    return {pid: ln.quantity for pid, ln in state.lines.items()}  # type: ignore[attr-defined]


def test_the_rules():
    target = {"a": line("a", 9, "1.00"), "b": line("b", 2)}
    source = {"a": line("a", 5, "2.00"), "c": line("c", 20)}
    lines, moved, dropped = apply_merge(target, source, "add", LIMITS, {"c": 4})
    assert {k: v.quantity for k, v in lines.items()} == {"a": 10, "b": 2, "c": 4}
    assert lines["a"].unit_cost == "2.00" and moved == {"a": 1, "c": 4} and dropped == ()
    lines, moved, dropped = apply_merge(target, source, "replace", LIMITS, {"c": 0})
    assert {k: v.quantity for k, v in lines.items()} == {"a": 5}
    assert moved == {"a": 5} and dropped == ("c",)
    kept, moved, dropped = apply_merge(target, {"c": line("c", 1)}, "replace", LIMITS, {"c": 0})
    assert kept == target and moved == {} and dropped == ("c",)


def test_replace_is_one_write_once_per_marker(store):
    key = CartKey("links-replace")
    for pid, qty in (("a", 1), ("b", 2)):
        store.add(key, line(pid, qty), owner=OWNER, limits=LIMITS)
    version = store.load(key).version
    source = {"b": line("b", 5), "c": line("c", 1)}
    outcome = store.merge(
        key, source, strategy="replace", marker="link:1", owner=OWNER, limits=LIMITS
    )
    assert quantities(outcome.state) == {"b": 5, "c": 1}
    assert dict(outcome.moved) == {"b": 5, "c": 1}
    assert store.load(key).version == version + 1
    again = store.merge(
        key, source, strategy="replace", marker="link:1", owner=OWNER, limits=LIMITS
    )
    assert again.already_merged and quantities(store.load(key)) == {"b": 5, "c": 1}
    added = store.merge(key, source, strategy="add", marker="link:2", owner=OWNER, limits=LIMITS)
    assert quantities(added.state) == {"b": 10, "c": 2} and dict(added.moved) == {"b": 5, "c": 1}


def test_a_replace_in_a_full_cart_fits(store):
    key = CartKey("links-full")
    limits = Limits(10, 3)
    for pid in ("a", "b", "c"):
        store.add(key, line(pid, 1), owner=OWNER, limits=limits)
    source = {"x": line("x", 1), "y": line("y", 1), "z": line("z", 1)}
    outcome = store.merge(key, source, strategy="replace", marker="m", owner=OWNER, limits=limits)
    assert quantities(outcome.state) == {"x": 1, "y": 1, "z": 1} and outcome.dropped == ()


def test_a_replace_racing_adds_keeps_every_add_made_after_it(store):
    key = CartKey("links-race")
    store.add(key, line("seed", 1), owner=OWNER, limits=LIMITS)
    adds: list[tuple[str, float, float]] = []
    replaces: list[tuple[float, float]] = []
    stop = threading.Event()

    def adder(n: int) -> None:
        for i in range(15):
            pid = f"t{n}-{i}"
            started = time.monotonic()
            store.add(key, line(pid, 1), owner=OWNER, limits=LIMITS)
            adds.append((pid, started, time.monotonic()))

    def replacer() -> None:
        count = 0
        while not stop.is_set():
            started = time.monotonic()
            store.merge(
                key,
                {"r": line("r", 1)},
                strategy="replace",
                marker=f"replace-{count}",
                owner=OWNER,
                limits=LIMITS,
            )
            replaces.append((started, time.monotonic()))
            count += 1

    threads = [threading.Thread(target=adder, args=(n,)) for n in range(3)]
    rep = threading.Thread(target=replacer)
    rep.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    rep.join()
    final = quantities(store.load(key))
    last_start, last_end = replaces[-1]
    assert final.get("r") == 1 and "seed" not in final
    for pid, started, ended in adds:
        if started > last_end:
            assert pid in final, pid  # made after the last replace: kept
        if ended < last_start:
            assert pid not in final, pid  # made before it: replaced
