"""SQL store specifics on the real servers: timestamps in UTC whatever the session's time
zone, pool exhaustion as StoreUnavailable, the table's key and timestamp columns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from flask_cart import Cart
from flask_cart.errors import StoreUnavailable
from flask_cart.stores.sql import SQLStore
from tests.conftest import MARIADB_URL, POSTGRES_URL, SERVER_ENGINES, drop_store_tables, test_name

UTC = timezone.utc

SESSION_TIME_ZONES = [
    pytest.param(
        "postgres",
        POSTGRES_URL,
        "SET TIME ZONE 'America/New_York'",
        marks=pytest.mark.postgres,
        id="postgres",
    ),
    pytest.param(
        "mariadb",
        MARIADB_URL,
        "SET time_zone = '-05:00'",
        marks=pytest.mark.mariadb,
        id="mariadb",
    ),
]


@pytest.fixture
def own_table(request: pytest.FixtureRequest) -> Any:
    """Drops the tables of the stores registered with it at teardown."""
    stores: list[SQLStore] = []
    yield stores.append
    for store in stores:
        drop_store_tables(store, store.engine)
        store.engine.dispose()


@pytest.mark.parametrize(("kind", "url", "set_zone"), SESSION_TIME_ZONES)
def test_timestamps_are_utc_whatever_the_session_time_zone(
    request: pytest.FixtureRequest, own_table: Any, kind: str, url: str, set_zone: str
) -> None:
    request.getfixturevalue(SERVER_ENGINES[kind])  # skips or fails when the server is down
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def local_time(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(set_zone)
        cursor.close()
        dbapi_conn.commit()

    store = SQLStore(engine, table_name=test_name())
    own_table(store)
    store.create_all()
    cart = Cart("u1", store)
    before = datetime.now(UTC)
    cart.add("a", 1)
    changed = cart.state
    loaded = cart.refresh()
    for stamp in (changed.updated_at, changed.created_at, loaded.updated_at, loaded.created_at):
        assert stamp is not None and stamp.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC) + timedelta(seconds=1)
    assert (loaded.updated_at, loaded.created_at) == (changed.updated_at, changed.created_at)
    cart.add("a", 1)
    assert cart.refresh().updated_at == cart.state.updated_at
    assert cart.state.created_at == changed.created_at


@pytest.mark.parametrize("kind", ["sqlite", *SERVER_ENGINES])
def test_pool_exhaustion_is_store_unavailable(
    request: pytest.FixtureRequest, tmp_path: Any, own_table: Any, kind: str
) -> None:
    if kind == "sqlite":
        url: Any = f"sqlite:///{tmp_path}/pool.sqlite3"
    else:
        url = request.getfixturevalue(SERVER_ENGINES[kind]).url
    engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    store = SQLStore(engine, table_name=test_name())
    own_table(store)
    store.create_all()
    Cart("u1", store).add("a", 1)
    with engine.connect():  # the only connection, held elsewhere
        with pytest.raises(StoreUnavailable):
            Cart("u1", store).add("a", 1)
        with pytest.raises(StoreUnavailable):
            Cart("u1", store).refresh()
    assert Cart("u1", store).get_product("a")["quantity"] == 1


@pytest.mark.mariadb
def test_a_mariadb_change_is_two_statements_and_no_rollback_after_its_commit(monkeypatch):
    """On MariaDB 10.5+ the upsert answers the locked row (RETURNING): no SELECT ... FOR
    UPDATE after it; and flask-cart's own engine sends no ROLLBACK when the connection goes
    back to the pool after a commit. An add: upsert, update, commit."""
    import pymysql.connections

    from flask_cart.lines import Limits, Line, Owner
    from flask_cart.stores.base import CartKey

    engine = SQLStore.create_engine(MARIADB_URL, timeout=30)
    store = SQLStore(engine, table_name=test_name(), timeout=30)
    store.create_all()
    try:
        key, owner = CartKey("u1"), Owner(None, 3600)
        store.add(key, Line("a", 1, "9.99"), owner=owner, limits=Limits())
        statements: list[str] = []
        rollbacks: list[bool] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        real_rollback = pymysql.connections.Connection.rollback

        def rollback(self: Any) -> None:
            rollbacks.append(True)
            real_rollback(self)

        monkeypatch.setattr(pymysql.connections.Connection, "rollback", rollback)
        state = store.add(key, Line("a", 2, "9.99"), owner=owner, limits=Limits())
        assert state.lines["a"].quantity == 3
        assert len(statements) == 2, statements
        upsert, update = (sql.split(" FOR ", 1)[1] for sql in statements)  # after SET STATEMENT
        assert upsert.startswith("INSERT") and "RETURNING" in upsert
        assert update.startswith("UPDATE")
        assert rollbacks == []
    finally:
        drop_store_tables(store, engine)
        engine.dispose()
