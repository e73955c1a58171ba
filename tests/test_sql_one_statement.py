"""PostgreSQL's add in one statement (flask_cart/stores/sql_one_statement.py) leaves every cart
exactly as the locking path does (SQLStore._change, taken here by a change with an op id),
and refuses what the locking path refuses, with the same errors."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from flask_cart.errors import CartClosed, QuantityLimitExceeded, StoreUnavailable
from flask_cart.lines import CartState, Limits, Line, Owner
from flask_cart.stores.base import CartKey

pytestmark = pytest.mark.postgres

GUEST = Owner(None, 3600)
CUSTOMER = Owner("42", 7200)
LIMITS = Limits(max_line_quantity=5, max_lines=3)


@pytest.fixture
def store(make_store: Any) -> Any:
    return make_store("postgres")


#: Listeners the running test added to the shared engine: removed after it.
LISTENING: list[tuple[Any, str, Any]] = []


@pytest.fixture(autouse=True)
def _remove_listeners() -> Any:
    yield
    while LISTENING:
        sa.event.remove(*LISTENING.pop())


def listen(engine: Any, event: str, fn: Any) -> None:
    """`fn` on `engine`'s `event` until the test ends."""
    sa.event.listen(engine, event, fn)
    LISTENING.append((engine, event, fn))


def statements(store: Any) -> list[str]:
    """The statements the store's engine runs from now on (a list that fills). A listener
    makes the store send them through SQLAlchemy's execute (see stores/sql_driver.py)."""
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    listen(store.engine, "before_cursor_execute", on_execute)
    return seen


def both(
    store: Any, build: Any, *changes: tuple[Line, Owner, Limits], prefix: str = "one"
) -> list[Any]:
    """The same cart built twice (by `build(key)`), the changes applied to one in one
    statement and to the other by the locking path: each side's state, or its error."""
    outcomes = []
    for name, op in (("fast", None), ("locking", "op")):
        key = CartKey(f"{prefix}-{name}")
        build(key)
        result: Any = None
        for number, (line, owner, limits) in enumerate(changes):
            try:
                result = store.add(
                    key,
                    line,
                    owner=owner,
                    limits=limits,
                    op=None if op is None else f"{op}{number}",
                )
            except Exception as exc:  # compared below: the same error on both sides
                result = (type(exc), exc.code, exc.details)
                break
        outcomes.append(describe(result))
    return outcomes


def describe(result: Any) -> Any:
    if not isinstance(result, CartState):
        return result
    return (
        [
            (ln.product_id, ln.quantity, ln.unit_cost, dict(ln.extra))
            for ln in result.lines.values()
        ],
        result.version,
        result.customer_id,
        result.sealed,
        sorted(result.merged),
        bool(result.uid),
        result.exists,
    )


def nothing(key: CartKey) -> None:
    pass


def line(product: str, quantity: int = 1, cost: str = "1.00", **extra: Any) -> Line:
    return Line(product, quantity, cost, extra)


CASES = {
    "a new cart": [(line("a", 2, name="A"), GUEST, LIMITS)],
    "a new line goes last, an old one is summed at the new price and details": [
        (line("a", 1, name="A"), GUEST, LIMITS),
        (line("b", 1, "2.50", name="B"), GUEST, LIMITS),
        (line("a", 2, "1.10", name="A2", colour="red"), GUEST, LIMITS),
    ],
    "no details keep the old ones": [
        (line("a", 1, name="A", colour="red"), GUEST, LIMITS),
        (line("a", 1, "0.90"), GUEST, LIMITS),
    ],
    "the owner and lifetime follow the change": [
        (line("a", 1), GUEST, LIMITS),
        (line("b", 1), CUSTOMER, LIMITS),
    ],
    "over the line cap": [(line("a", 4), GUEST, LIMITS), (line("a", 2), GUEST, LIMITS)],
    "a stock cap lower than the line cap": [
        (line("a", 1), GUEST, LIMITS),
        (line("a", 2), GUEST, Limits(max_line_quantity=2, max_lines=3)),
    ],
    "over the line count": [
        (line("a"), GUEST, LIMITS),
        (line("b"), GUEST, LIMITS),
        (line("c"), GUEST, LIMITS),
        (line("d"), GUEST, LIMITS),
    ],
    "one too many on a new line": [(line("a", 6), GUEST, LIMITS)],
    "text that needs escaping": [
        (line('q"\\', 1, name='Say "hi" \\ \u2028 Caf\u00e9'), GUEST, LIMITS),
        (line('q"\\', 1, name="\u2615"), GUEST, LIMITS),
    ],
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_one_statement_add_changes_a_cart_as_the_locking_path_does(store, case):
    fast, locking = both(store, nothing, *CASES[case])
    assert fast == locking


def test_an_add_is_one_statement_in_the_calls_bounded_transaction(store):
    key = CartKey("one-trip")
    store.add(key, line("a"), owner=GUEST, limits=LIMITS)
    seen = statements(store)
    state = store.add(key, line("a"), owner=GUEST, limits=LIMITS)
    assert state.lines["a"].quantity == 2
    # the transaction's bounds (SET LOCAL), then the add itself: no locking read, no UPDATE
    assert len(seen) == 2 and "set_config" in seen[0]
    assert seen[1].lstrip().startswith("INSERT INTO") and "ON CONFLICT" in seen[1]


def test_a_refused_add_is_explained_by_the_locking_path_in_the_same_transaction(store):
    key = CartKey("one-refused")
    store.add(key, line("a", 5), owner=GUEST, limits=LIMITS)
    seen = statements(store)
    begun: list[int] = []
    listen(store.engine, "begin", lambda conn: begun.append(1))
    with pytest.raises(QuantityLimitExceeded) as refused:
        store.add(key, line("a", 1), owner=GUEST, limits=LIMITS)
    assert refused.value.details["in_cart"] == 5
    assert len(begun) == 1 and len(seen) == 3  # bounds, the add, the locking path's upsert


def test_an_add_that_gave_up_is_never_applied_later(make_store):
    """The call's commit is sent only after the answer: a call that timed out waiting for a
    lock (here a table lock, taken before the statement runs) leaves the cart as it was."""
    store = make_store("postgres", timeout=1.0)
    key = CartKey("one-late")
    store.add(key, line("a"), owner=GUEST, limits=LIMITS)
    with store.engine.connect() as other:
        other.execute(sa.text(f"LOCK TABLE {store.table.name} IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(StoreUnavailable):
            store.add(key, line("a"), owner=GUEST, limits=LIMITS)
        time.sleep(1.5)  # past the deadline, the lock still held
        other.rollback()
    time.sleep(0.5)
    assert store.load(key).lines["a"].quantity == 1


def test_a_cart_whose_details_postgres_cannot_read_as_json_still_takes_adds(store):
    """A "\\u0000" in a line's details (check_details lets it through) makes PostgreSQL's
    JSON operators fail: the add takes the locking path, which does not use them."""
    key = CartKey("one-nul")
    store.add(key, line("a", 1, note="x\x00y"), owner=GUEST, limits=LIMITS, op="seed")
    store.add(key, line("a", 1), owner=GUEST, limits=LIMITS)
    state = store.add(key, line("b", 1), owner=GUEST, limits=LIMITS)
    assert {pid: ln.quantity for pid, ln in state.lines.items()} == {"a": 2, "b": 1}
    assert state.lines["a"].extra == {"note": "x\x00y"}


def test_the_locking_path_serves_big_carts_keyed_changes_and_translated_schemas(store):
    from flask_cart.stores import sql_one_statement as one

    assert one.applies(store.engine, line("a"), LIMITS)
    assert not one.applies(store.engine, line("a"), Limits(max_lines=101))
    assert not one.applies(store.engine, line("a", 6), LIMITS)
    translated = store.engine.execution_options(schema_translate_map={None: "tenant"})
    assert not one.applies(translated, line("a"), LIMITS)
    key = CartKey("one-keyed")
    seen = statements(store)
    store.add(key, line("a"), owner=GUEST, limits=LIMITS, op="k1")
    assert not any(
        "ON CONFLICT (identifier, instance) DO UPDATE SET\n    content = CASE" in q for q in seen
    )


def test_a_sealed_cart_and_a_tombstone_refuse_the_add(store):
    def sealed(key: CartKey) -> None:
        store.add(key, line("a"), owner=GUEST, limits=LIMITS, op="seed")
        store.seal(key)

    fast, locking = both(store, sealed, (line("a"), GUEST, LIMITS))
    assert fast == locking and fast[0] is CartClosed

    def buried(key: CartKey) -> None:
        sealed(key)
        store.bury(key, CartKey("customer:1"))

    fast, locking = both(store, buried, (line("a"), GUEST, LIMITS), prefix="buried")
    assert fast == locking and fast[0] is CartClosed


def test_merge_markers_are_kept(store):
    def merged(key: CartKey) -> None:
        store.merge(
            key,
            {"m": line("m", 1)},
            strategy="sum",
            marker="guest:cart@u.1",
            owner=GUEST,
            limits=LIMITS,
        )

    fast, locking = both(store, merged, (line("a"), GUEST, LIMITS))
    assert fast == locking and fast[4] == ["guest:cart@u.1"]


def test_an_expired_cart_starts_afresh(store):
    later = datetime.now(timezone.utc) + timedelta(hours=2)

    def expired(key: CartKey) -> None:
        store.clock = lambda: datetime.now(timezone.utc)
        store.add(key, line("old", 3), owner=GUEST, limits=LIMITS, op="seed")
        store.clock = lambda: later  # the guest cart's hour is over

    fast, locking = both(store, expired, (line("a", 2), GUEST, LIMITS))
    assert fast == locking
    assert [row[0] for row in fast[0]] == ["a"] and fast[1] == 2
    key = CartKey("one-fast")
    assert store.load(key).created_at == later


def test_a_content_column_migrated_to_jsonb_takes_adds_in_one_statement(store):
    """A shop may have moved the column to ``jsonb``: the statement reads it as ``json``."""
    name = store.table.name
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(f"ALTER TABLE {name} ALTER COLUMN content TYPE jsonb USING content::jsonb")
        )
    key = CartKey("one-jsonb")
    store.add(key, line("a", 1, name="A"), owner=GUEST, limits=LIMITS)
    seen = statements(store)
    store.add(key, line("a", 1), owner=GUEST, limits=LIMITS)
    state = store.add(key, line("b", 2, "2.50", name="B"), owner=GUEST, limits=LIMITS)
    assert len(seen) == 4  # two adds, each the bounds and the one statement
    assert describe(state)[0] == [("a", 2, "1.00", {"name": "A"}), ("b", 2, "2.50", {"name": "B"})]
    assert describe(store.load(key)) == describe(state)


def test_the_locking_path_behind_unreadable_data_keeps_the_calls_deadline(store, monkeypatch):
    """After the statement fails on data it cannot read, the locking path gets only what is
    left of CART_STORE_TIMEOUT."""
    from flask_cart.stores import sql_calls

    key = CartKey("one-deadline")
    store.add(key, line("a", 1, note="x\x00y"), owner=GUEST, limits=LIMITS, op="seed")
    timeouts: list[float] = []
    real_run = sql_calls.run

    def spy(engine: Any, timeout: float, work: Any) -> Any:
        timeouts.append(timeout)
        return real_run(engine, timeout, work)

    monkeypatch.setattr(sql_calls, "run", spy)
    state = store.add(key, line("a", 1), owner=GUEST, limits=LIMITS)
    assert state.lines["a"].quantity == 2
    assert len(timeouts) == 2 and timeouts[1] < timeouts[0] == store.timeout
