"""PostgreSQL's add sent on psycopg's connection directly (flask_cart/stores/sql_driver.py):
the same bounds, errors and connection handling as through SQLAlchemy's execute."""

from __future__ import annotations

import logging
import signal
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from flask_cart.errors import StoreUnavailable
from flask_cart.lines import Limits, Line, Owner
from flask_cart.stores import sql_driver
from flask_cart.stores.base import CartKey
from flask_cart.stores.sql import SQLStore
from tests.conftest import POSTGRES_URL, drop_store_tables, test_name

pytestmark = pytest.mark.postgres

GUEST = Owner(None, 3600)


@pytest.fixture
def own_store() -> Any:
    """A store on an engine of its own whose connections carry a name of their own."""
    name = f"fc_drv_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(
        POSTGRES_URL, connect_args={"application_name": name}, pool_size=1, max_overflow=0
    )
    store = SQLStore(engine, table_name=test_name(), timeout=2.5)
    store.create_all()
    yield store, name
    drop_store_tables(store, engine)
    engine.dispose()


def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements sent on the driver's connection directly from now on."""
    seen: list[str] = []
    real = sql_driver.execute

    def spy(conn: Any, statement: str, params: Any = None) -> Any:
        seen.append(statement)
        return real(conn, statement, params)

    monkeypatch.setattr(sql_driver, "execute", spy)
    return seen


def test_an_add_sends_its_bounds_and_its_statement_to_the_driver(own_store, monkeypatch):
    store, _ = own_store
    key = CartKey("drv-add")
    store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    seen = sent(monkeypatch)
    state = store.add(key, Line("a", 2, "1.75", {"c": 1}), owner=GUEST, limits=Limits())
    assert len(seen) == 2 and seen[0].startswith("SELECT set_config('statement_timeout'")
    assert seen[1].lstrip().startswith("INSERT INTO") and "ON CONFLICT" in seen[1]
    assert state.lines["a"].quantity == 3 and state.lines["a"].unit_cost == "1.75"
    assert state.updated_at is not None and state.updated_at.utcoffset().total_seconds() == 0
    assert store.load(key) == state


def test_the_bounds_sent_to_the_driver_hold_in_the_calls_transaction(own_store):
    store, _ = own_store

    def work(conn: sa.Connection) -> tuple[Any, ...]:
        return tuple(
            conn.execute(sa.text(f"SHOW {name}_timeout")).scalar() for name in ("statement", "lock")
        )

    shown = store._run(work)
    for value in shown:
        assert value.endswith("ms") or value.endswith("s"), value
        ms = int(value[:-2]) if value.endswith("ms") else int(value[:-1]) * 1000
        assert 2000 < ms <= 2500
    with store.engine.connect() as conn:  # SET LOCAL: gone with the transaction
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "0"


def test_a_listener_on_the_engine_sees_both_statements(own_store, monkeypatch):
    store, _ = own_store
    key = CartKey("drv-listened")
    store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    direct = sent(monkeypatch)
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        state = store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", on_execute)
    assert direct == [] and len(seen) == 2 and "set_config" in seen[0]
    assert state.lines["a"].quantity == 2


def test_a_connection_lost_under_the_add_is_503_and_the_next_add_gets_a_new_one(own_store):
    store, name = own_store
    key = CartKey("drv-lost")
    store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    with sa.create_engine(POSTGRES_URL).connect() as admin:
        killed = admin.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            {"name": name},
        ).scalar()
        admin.commit()
    assert killed == 1
    with pytest.raises(StoreUnavailable) as failed:
        store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    assert "unavailable" in str(failed.value)
    state = store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    assert state.lines["a"].quantity == 2


def test_statement_logging_shows_the_add_and_its_bounds(own_store, caplog):
    """``echo=True`` or the ``sqlalchemy.engine`` logger at INFO log every statement."""
    store, _ = own_store
    key = CartKey("drv-echo")
    store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    logged = caplog.text
    assert "set_config('statement_timeout'" in logged and "ON CONFLICT" in logged


@pytest.mark.parametrize("event", ["before_execute", "after_execute", "handle_error"])
def test_any_statement_listener_keeps_the_statements_on_execute(own_store, event, monkeypatch):
    store, _ = own_store
    key = CartKey(f"drv-{event}")
    store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    direct = sent(monkeypatch)
    sa.event.listen(store.engine, event, lambda *args, **kwargs: None)
    state = store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    assert direct == [] and state.lines["a"].quantity == 2


def test_an_engine_that_hides_parameters_hides_them_in_errors_too():
    name = f"fc_drv_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(
        POSTGRES_URL,
        hide_parameters=True,
        connect_args={"options": "-c default_transaction_read_only=on"},
    )
    setup = sa.create_engine(POSTGRES_URL)
    store = SQLStore(engine, table_name=name, timeout=2.5)
    SQLStore(setup, table_name=name).create_all()
    try:
        with pytest.raises(StoreUnavailable) as failed:
            store.add(CartKey("secret-cart-id"), Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
        chain, error = [], failed.value.__cause__
        while error is not None:
            chain.append(str(error))
            error = error.__cause__ or error.__context__
        assert chain and "secret-cart-id" not in "\n".join(chain)
    finally:
        drop_store_tables(SQLStore(setup, table_name=name), setup)
        engine.dispose()
        setup.dispose()


def test_an_interruption_during_the_add_propagates_and_the_pool_recovers(own_store):
    """A timeout raised into the waiting add (gevent.Timeout, a signal handler) reaches the
    caller as itself; the connection, whose statement may still run, is discarded."""
    store, _ = own_store
    key = CartKey("drv-interrupted")
    store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())

    def interrupt(signum: int, frame: Any) -> None:
        raise TimeoutError("interrupted")

    previous = signal.signal(signal.SIGALRM, interrupt)
    locker = sa.create_engine(POSTGRES_URL)
    try:
        with locker.connect() as other:
            other.execute(sa.text(f"SELECT 1 FROM {store.table.name} FOR UPDATE"))
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(TimeoutError):
                store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
            other.rollback()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        locker.dispose()
    state = store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
    assert state.lines["a"].quantity == 2


def test_timestamp_columns_without_time_zone_read_as_utc_in_any_process_zone(
    own_store, monkeypatch
):
    store, _ = own_store
    with store.engine.begin() as conn:
        for column in ("created_at", "updated_at", "expires_at"):
            conn.execute(
                sa.text(
                    f"ALTER TABLE {store.table.name} ALTER COLUMN {column}"
                    f" TYPE timestamp without time zone USING {column} AT TIME ZONE 'UTC'"
                )
            )
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        key = CartKey("drv-naive")
        store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
        state = store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
        assert state.lines["a"].quantity == 2
        assert state == store.load(key)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_an_engine_with_positional_parameters_keeps_the_add_on_execute():
    name = f"fc_drv_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_URL, paramstyle="format")
    store = SQLStore(engine, table_name=name, timeout=2.5)
    store.create_all()
    try:
        key = CartKey("drv-format")
        store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
        state = store.add(key, Line("a", 1, "1.50"), owner=GUEST, limits=Limits())
        assert state.lines["a"].quantity == 2
    finally:
        drop_store_tables(store, engine)
        engine.dispose()
