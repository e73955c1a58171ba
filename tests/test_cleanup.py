"""`flask cart cleanup`: retention, statistics, dry runs, races and bad input, on every store.

Carts are aged by writing their last-change time directly (SQL ``updated_at``, Redis
``_u``), never by sleeping.
"""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_cart import Cart
from flask_cart.cleanup import Retention, run_cleanup
from flask_cart.cli import _progress_bar, cart_cli
from flask_cart.lines import Limits, Line, Owner
from flask_cart.manager import CartManager
from flask_cart.stores.base import CartKey, CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from flask_cart.stores.sql_cleanup import select_batch

UTC = timezone.utc
DAY = timedelta(days=1)
YEAR = 365 * 86400


# --- helpers -------------------------------------------------------------------------


def now_of(store: CartStore) -> datetime:
    return store.clock() if isinstance(store, SQLStore) else datetime.now(UTC)


def put(store: CartStore, name: str, *, customer: str | None = None, age: timedelta) -> CartKey:
    """A one-line cart last changed `age` ago (guest unless `customer` is given)."""
    key = CartKey(name)
    store.add(key, Line("sku-1", 1, "9.99"), owner=Owner(customer, ttl=YEAR), limits=Limits())
    age_cart(store, key, age)
    return key


def age_cart(store: CartStore, key: CartKey, age: timedelta) -> None:
    """Write the cart's last-change time as `age` ago."""
    when = now_of(store) - age
    if isinstance(store, RedisStore):
        store.client.hset(store.key(key), "_u", int(when.timestamp() * 1000))
        return
    assert isinstance(store, SQLStore)
    t = store.table
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.identifier == key.identifier, t.c.instance == key.instance)
            .values(updated_at=when)
        )


def exists(store: CartStore, key: CartKey) -> bool:
    if isinstance(store, RedisStore):
        return bool(store.client.exists(store.key(key)))
    return store.load(key).exists


def count(store: CartStore) -> int:
    """Every cart the store holds, counted behind its back."""
    if isinstance(store, RedisStore):
        return sum(1 for _ in store.client.scan_iter(match=f"{store.prefix}*", count=500))
    assert isinstance(store, SQLStore)
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(store.table)).scalar())


def cli_app(store: CartStore, **config: Any) -> Flask:
    """A CartManager app configured onto `store`'s table or key prefix."""
    app = Flask(__name__)
    if isinstance(store, RedisStore):
        app.config.update(CART_STORE="redis", CART_REDIS=store.client, CART_KEY_PREFIX=store.prefix)
    else:
        assert isinstance(store, SQLStore)
        app.config.update(
            CART_STORE="sqlalchemy",
            CART_DATABASE_URI=store.engine.url.render_as_string(hide_password=False),
            CART_TABLE_NAME=store.table.name,
        )
    app.config.update(config)
    CartManager(app)
    return app


def cleanup(store: CartStore, *args: str, **config: Any) -> Any:
    """Run `flask cart cleanup ARGS` in a CartManager app on `store`; the click Result."""
    app = cli_app(store, **config)
    try:
        return app.test_cli_runner().invoke(args=["cart", "cleanup", *args])
    finally:
        used = app.extensions["cart"].get_store(app)
        if isinstance(used, SQLStore):
            used.engine.dispose()


def cleanup_json(store: CartStore, *args: str) -> dict[str, Any]:
    result = cleanup(store, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


# --- retention -------------------------------------------------------------------------


def test_guest_retention_boundary(store: CartStore) -> None:
    young = put(store, "guest-young", age=30 * DAY - timedelta(hours=1))
    old = put(store, "guest-old", age=30 * DAY + timedelta(seconds=1))

    result = cleanup(store)

    assert result.exit_code == 0, result.output
    assert exists(store, young)
    assert not exists(store, old)
    assert "deleted 1 carts: 1 guest (> 30 d), 0 customer (> 90 d)" in result.output


def test_customer_retention_boundary(store: CartStore) -> None:
    young = put(store, "customer-young", customer="c1", age=89 * DAY)
    old = put(store, "customer-old", customer="c2", age=91 * DAY)

    result = cleanup(store)

    assert result.exit_code == 0, result.output
    assert exists(store, young)
    assert not exists(store, old)
    assert "deleted 1 carts: 0 guest (> 30 d), 1 customer (> 90 d)" in result.output


def test_customer_cart_never_deleted_at_guest_age(store: CartStore) -> None:
    customer = put(store, "customer-31", customer="c1", age=31 * DAY)
    guest = put(store, "guest-31", age=31 * DAY)

    out = cleanup_json(store)

    assert exists(store, customer)
    assert not exists(store, guest)
    assert out["deleted"] == {"guest": 1, "customer": 0, "leftover": 0, "total": 1}


def test_age_is_time_since_last_change(store: CartStore) -> None:
    """A cart created long ago but changed today is not deleted."""
    key = put(store, "old-but-active", age=200 * DAY)
    store.add(key, Line("sku-2", 1, "1.00"), owner=Owner(None, ttl=YEAR), limits=Limits())
    if isinstance(store, SQLStore):
        with store.engine.begin() as conn:
            conn.execute(sa.update(store.table).values(created_at=now_of(store) - 200 * DAY))

    cleanup_json(store)

    assert exists(store, key)


def test_custom_days(store: CartStore) -> None:
    guest_8 = put(store, "guest-8", age=8 * DAY)
    guest_6 = put(store, "guest-6", age=6 * DAY)
    customer_15 = put(store, "customer-15", customer="c1", age=15 * DAY)
    customer_13 = put(store, "customer-13", customer="c2", age=13 * DAY)

    out = cleanup_json(store, "--guest-days", "7", "--customer-days", "14")

    assert out["guest_days"] == 7 and out["customer_days"] == 14
    assert out["deleted"] == {"guest": 1, "customer": 1, "leftover": 0, "total": 2}
    assert [exists(store, k) for k in (guest_8, guest_6, customer_15, customer_13)] == [
        False,
        True,
        False,
        True,
    ]


def test_days_default_to_config(store: CartStore) -> None:
    guest = put(store, "guest-3", age=3 * DAY)
    customer = put(store, "customer-6", customer="c1", age=6 * DAY)

    result = cleanup(store, CART_GUEST_DAYS=2, CART_CUSTOMER_DAYS=5)

    assert result.exit_code == 0, result.output
    assert not exists(store, guest) and not exists(store, customer)
    assert "(> 2 d)" in result.output and "(> 5 d)" in result.output


def test_batches_cover_everything(store: CartStore) -> None:
    expired = [put(store, f"g{i}", age=40 * DAY + i * timedelta(minutes=1)) for i in range(7)]
    live = [put(store, f"l{i}", age=timedelta(hours=i)) for i in range(3)]

    out = cleanup_json(store, "--batch-size", "2")

    assert out["deleted"]["guest"] == 7
    assert out["batches"] >= 4
    assert not any(exists(store, k) for k in expired)
    assert all(exists(store, k) for k in live)


# --- statistics and dry runs -------------------------------------------------------------


def seed_mix(store: CartStore) -> None:
    put(store, "g-1h", age=timedelta(hours=1))
    put(store, "g-3d", age=3 * DAY)
    put(store, "g-31d", age=31 * DAY)
    put(store, "c-10d", customer="c1", age=10 * DAY)
    put(store, "c-91d", customer="c2", age=91 * DAY)


def test_stats_reports_and_changes_nothing(store: CartStore) -> None:
    seed_mix(store)
    before = count(store)

    out = cleanup_json(store, "--stats")

    assert count(store) == before == 5
    assert {k: out[k] for k in ("total", "guest", "customer", "changed_24h", "changed_7d")} == {
        "total": 5,
        "guest": 3,
        "customer": 2,
        "changed_24h": 1,
        "changed_7d": 2,
    }
    assert out["due"] == {"guest": 1, "customer": 1, "leftover": 0, "total": 2}
    oldest = datetime.strptime(out["oldest"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(oldest - (now_of(store) - 91 * DAY)) < timedelta(minutes=1)


def test_stats_text(store: CartStore) -> None:
    seed_mix(store)

    result = cleanup(store, "--stats", "--guest-days", "2")

    assert result.exit_code == 0, result.output
    assert "carts:              5" in result.output
    assert "due for deletion:   3 (2 guest > 2 d, 1 customer > 90 d" in result.output
    assert count(store) == 5


def test_dry_run_reports_and_changes_nothing(store: CartStore) -> None:
    seed_mix(store)
    before = count(store)

    out = cleanup_json(store, "--dry-run")
    text = cleanup(store, "--dry-run", "--customer-days", "5")

    assert count(store) == before == 5
    assert out["dry_run"] is True
    assert out["would_delete"] == {"guest": 1, "customer": 1, "leftover": 0, "total": 2}
    assert "deleted" not in out
    assert text.exit_code == 0, text.output
    assert text.output.startswith("would delete 3 carts: 1 guest (> 30 d), 2 customer (> 5 d)")
    assert count(store) == 5


def test_empty_store(store: CartStore) -> None:
    stats = cleanup_json(store, "--stats")
    assert stats["total"] == 0 and stats["oldest"] is None
    assert cleanup_json(store)["deleted"]["total"] == 0


# --- races -----------------------------------------------------------------------------------


def test_cart_touched_during_a_batch_survives(store: CartStore, store_kind: str) -> None:
    """A cart changed after the batch that holds it was chosen is not deleted."""
    touched = put(store, "touched", age=40 * DAY)
    other = put(store, "other", age=41 * DAY)
    calls: list[int] = []

    if store_kind in ("postgres", "mariadb"):
        # The batch is chosen with FOR UPDATE SKIP LOCKED: a cart whose change is in
        # flight is skipped (not waited for), and kept once the change commits. (A change
        # made from inside the batch would wait for the batch's own row locks.)
        assert isinstance(store, SQLStore)
        t = store.table
        with store.engine.connect() as writer:
            writer.begin()
            writer.execute(
                sa.update(t).where(t.c.identifier == "touched").values(updated_at=now_of(store))
            )
            result = run_in_thread(lambda: run_cleanup(store, Retention(), batch_size=10))
            writer.commit()
    else:

        def touch(selected: Any) -> None:
            calls.append(len(selected))
            store.add(
                touched,
                Line("sku-2", 1, "1.00"),
                owner=Owner(None, ttl=YEAR),
                limits=Limits(),
            )

        result = store.delete_expired(
            guest_cutoff=now_of(store) - 30 * DAY,
            customer_cutoff=now_of(store) - 90 * DAY,
            batch_size=10,
            on_batch=touch,
        )
        assert calls and calls[0] == 2  # both were due when the batch was chosen

    assert result.guest == 1
    assert exists(store, touched)
    assert not exists(store, other)


def run_in_thread(work: Any, timeout: float = 20) -> Any:
    """Run `work` in a thread; fail (instead of hanging) if it blocks."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "cleanup blocked on a cart being changed"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_two_cleanups_at_once_delete_each_cart_once(make_store: Any, store_kind: str) -> None:
    store = make_store(store_kind)
    expired = [put(store, f"e{i}", age=31 * DAY + i * timedelta(seconds=7)) for i in range(60)]
    expired += [
        put(store, f"ce{i}", customer=f"c{i}", age=95 * DAY + i * timedelta(seconds=3))
        for i in range(20)
    ]
    live = [put(store, f"l{i}", age=timedelta(days=i % 29)) for i in range(20)]
    # Each cleanup runs on a store object of its own, as two processes would.
    twin = twin_store(store, make_store)
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def work(s: CartStore) -> None:
        barrier.wait()
        try:
            results.append(run_cleanup(s, Retention(), batch_size=5))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in (store, twin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    assert len(results) == 2
    assert sum(r.guest for r in results) == 60
    assert sum(r.customer for r in results) == 20
    assert not any(exists(store, k) for k in expired)
    assert all(exists(store, k) for k in live)


def twin_store(store: CartStore, make_store: Any) -> CartStore:
    """Another store object (own connections) on the same carts."""
    if isinstance(store, RedisStore):
        import redis

        kw = store.client.connection_pool.connection_kwargs
        client = redis.Redis(host=kw["host"], port=kw["port"], db=kw.get("db", 0))
        return RedisStore(client, prefix=store.prefix)
    assert isinstance(store, SQLStore)
    engine = sa.create_engine(store.engine.url)
    return SQLStore(engine, table=store.table)


# --- Redis: leftovers and foreign keys ---------------------------------------------------------


def test_a_sealed_guest_cart_is_kept_under_the_guest_retention(store: CartStore) -> None:
    """An interrupted merge leaves the guest cart sealed; the merge retried at the next
    login must still find it, so it lives as long as any guest cart, not an hour."""
    interrupted = put(store, "interrupted", age=timedelta(0))
    expired = put(store, "expired-sealed", age=timedelta(0))
    store.seal(interrupted)
    store.seal(expired)
    age_cart(store, interrupted, timedelta(hours=2))
    age_cart(store, expired, 30 * DAY + timedelta(seconds=1))

    stats = cleanup_json(store, "--stats")
    out = cleanup_json(store)

    assert stats["due"] == {"guest": 1, "customer": 0, "leftover": 0, "total": 1}
    assert out["deleted"] == {"guest": 1, "customer": 0, "leftover": 0, "total": 1}
    assert not exists(store, expired)
    customer = Cart("c1", store, customer_id="1")
    customer.merge(Cart("interrupted", store))  # the retried merge
    assert customer.get_product("sku-1")["quantity"] == 1


@pytest.mark.redis
def test_redis_leaves_other_keys_alone(make_store: Any) -> None:
    store = make_store("redis")
    client = store.client
    put(store, "old", age=60 * DAY)
    client.set(f"{store.prefix}a-string", "x")
    client.hset(f"{store.prefix}a-hash-without-cart-fields", "f", "1")
    outside = f"x{store.prefix}outside"
    client.hset(outside, mapping={"_u": 1, "_k": ""})
    try:
        out = cleanup_json(store)
        assert out["deleted"]["total"] == 1
        assert client.exists(f"{store.prefix}a-string")
        assert client.exists(f"{store.prefix}a-hash-without-cart-fields")
        assert client.exists(outside)
    finally:
        client.delete(outside)


@pytest.mark.redis
def test_redis_prefix_with_glob_characters(make_store: Any, redis_client: Any) -> None:
    base = make_store("redis")
    store = RedisStore(redis_client, prefix=f"{base.prefix}[x]*:")
    neighbour = RedisStore(redis_client, prefix=f"{base.prefix}x:")
    mine = put(store, "mine", age=60 * DAY)
    theirs = put(neighbour, "theirs", age=60 * DAY)

    out = cleanup_json(store)

    assert out["deleted"]["total"] == 1
    assert not exists(store, mine)
    assert exists(neighbour, theirs)


# --- PostgreSQL: the index ------------------------------------------------------------------------


def index_rows(now: datetime) -> list[dict[str, Any]]:
    """5,000 rows, a third of them customers', last changed 0 to 60 days ago."""
    return [
        {
            "identifier": f"id-{i}",
            "instance": "cart",
            "content": {"lines": [], "merged": [], "sealed": False},
            "customer_id": None if i % 3 else f"c{i}",
            "is_guest": bool(i % 3),
            "version": 1,
            "created_at": now - timedelta(days=i % 60),
            "updated_at": now - timedelta(days=i % 60, minutes=i % 1000),
            "expires_at": now + DAY,
        }
        for i in range(5000)
    ]


@pytest.mark.postgres
def test_postgres_batch_uses_the_cleanup_index(make_store: Any) -> None:
    """5,000 carts, 10 % due: the planner picks ix_<table>_cleanup on its own."""
    store = make_store("postgres")
    t = store.table
    now = now_of(store)
    rows = index_rows(now)
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t), rows)
        conn.exec_driver_sql(f'ANALYZE "{t.name}"')
        stmt = select_batch(
            t,
            is_guest=True,
            cutoff=now - 54 * DAY,
            batch_size=1000,
            dialect="postgresql",
        )
        compiled = stmt.compile(dialect=conn.dialect)
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        )
        stmt2 = select_batch(
            t,
            is_guest=True,
            cutoff=now - 54 * DAY,
            batch_size=1000,
            after=now - 58 * DAY,
            dialect="postgresql",
        )
        compiled2 = stmt2.compile(dialect=conn.dialect)
        plan2 = "\n".join(
            row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled2}", compiled2.params)
        )
    assert f"ix_{t.name}_cleanup" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert f"ix_{t.name}_cleanup" in plan2, plan2
    assert "SKIP LOCKED" in str(compiled)

    out = cleanup_json(store, "--guest-days", "54", "--batch-size", "100")
    assert out["deleted"]["guest"] == sum(
        1 for r in rows if r["is_guest"] and r["updated_at"] < now - 54 * DAY
    )


@pytest.mark.mariadb
def test_mariadb_batch_uses_the_cleanup_index(make_store: Any) -> None:
    """5,000 carts, 10 % due: MariaDB walks ix_<table>_cleanup, locking with SKIP LOCKED."""
    store = make_store("mariadb")
    t = store.table
    now = now_of(store)
    rows = index_rows(now)
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t), rows)
        conn.exec_driver_sql(f"ANALYZE TABLE `{t.name}`").all()
        for after in (None, now - 58 * DAY):
            stmt = select_batch(
                t,
                is_guest=True,
                cutoff=now - 54 * DAY,
                batch_size=1000,
                after=after,
                dialect="mysql",
            )
            compiled = stmt.compile(dialect=conn.dialect)
            assert "SKIP LOCKED" in str(compiled)
            plan = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).mappings().all()
            assert [row["key"] for row in plan] == [f"ix_{t.name}_cleanup"], plan
            assert plan[0]["type"] == "range", plan

    out = cleanup_json(store, "--guest-days", "54", "--batch-size", "100")
    assert out["deleted"]["guest"] == sum(
        1 for r in rows if r["is_guest"] and r["updated_at"] < now - 54 * DAY
    )
    assert out["batches"] >= 2


# --- command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--guest-days", "-1"], "Invalid value for '--guest-days'"),
        (["--customer-days", "-5"], "Invalid value for '--customer-days'"),
        (["--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["--guest-days", "soon"], "'soon' is not a valid integer"),
        (["--nope"], "No such option"),
    ],
)
def test_bad_arguments_exit_non_zero(make_store: Any, args: list[str], message: str) -> None:
    store = make_store("sqlite")
    put(store, "old", age=60 * DAY)

    result = cleanup(store, *args)

    assert result.exit_code == 2
    assert message in result.output
    assert count(store) == 1


def test_bad_configured_days_exit_non_zero(make_store: Any) -> None:
    """CartManager refuses such config at init_app; the command checks on its own too."""
    store = make_store("sqlite")
    app = Flask(__name__)
    app.config["CART_GUEST_DAYS"] = -3
    app.extensions["cart"] = SimpleNamespace(get_store=lambda: store)
    app.cli.add_command(cart_cli)
    result = app.test_cli_runner().invoke(args=["cart", "cleanup"])
    assert result.exit_code == 2
    assert "CART_GUEST_DAYS must be a number of days >= 0" in result.output


def test_works_without_the_blueprint(store: CartStore) -> None:
    old = put(store, "old", age=31 * DAY)
    result = cleanup(store, "--json", CART_BLUEPRINT=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"]["guest"] == 1
    assert not exists(store, old)


def test_fractional_configured_days(store: CartStore) -> None:
    """CartManager accepts days as a float (CART_GUEST_DAYS = 0.5): so does the command."""
    gone = put(store, "13h", age=timedelta(hours=13))
    kept = put(store, "11h", age=timedelta(hours=11))
    result = cleanup(store, "--json", CART_GUEST_DAYS=0.5)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["guest_days"] == 0.5
    assert not exists(store, gone) and exists(store, kept)


@pytest.mark.parametrize("kind", ["sql", "redis"])
def test_unreachable_store_exits_with_one_line(kind: str) -> None:
    app = Flask(__name__)
    if kind == "sql":
        app.config.update(
            CART_STORE="sqlalchemy",
            CART_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2",
        )
    else:
        app.config.update(
            CART_STORE="redis", CART_REDIS_URL="redis://127.0.0.1:1/0", CART_REDIS_TIMEOUT=1
        )
    CartManager(app)
    for args in ([], ["--stats"], ["--dry-run"], ["--json"]):
        started = time.monotonic()
        result = app.test_cli_runner().invoke(args=["cart", "cleanup", *args])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith("Error: ") and "unavailable" in lines[0]
        assert time.monotonic() - started < 10


def test_missing_extension_exits_with_message() -> None:
    app = Flask(__name__)
    app.cli.add_command(cart_cli)
    result = app.test_cli_runner().invoke(args=["cart", "cleanup"])
    assert result.exit_code == 1
    assert "not initialised" in result.output


def test_progress_bar_only_on_request() -> None:
    with _progress_bar(False) as progress:
        assert progress is None

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    import sys

    saved, sys.stderr = sys.stderr, out
    try:
        with _progress_bar(True) as progress:
            assert progress is not None
            progress(0, 10)
            progress(10, 10)
        with _progress_bar(True) as progress:
            assert progress is not None
            progress(500, None)
    finally:
        sys.stderr = saved
    text = out.getvalue()
    assert "deleting expired carts" in text and "10/10" in text
    assert "examining carts" in text and "500" in text


def test_no_progress_noise_when_not_a_terminal(store: CartStore) -> None:
    put(store, "old", age=60 * DAY)
    result = cleanup(store)
    assert result.exit_code == 0
    assert result.output.count("\n") == 1  # the summary line only


@pytest.mark.redis
def test_redis_cluster_path_one_script_call_per_key(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Redis Cluster each key gets its own script call (keys live in many slots)."""
    from flask_cart.stores import redis_cleanup

    monkeypatch.setattr(redis_cleanup, "is_cluster", lambda client: True)
    store = make_store("redis")
    seed_mix(store)
    sealed = put(store, "sealed", age=timedelta(0))
    store.seal(sealed)
    age_cart(store, sealed, timedelta(hours=3))

    stats = cleanup_json(store, "--stats", "--batch-size", "2")
    out = cleanup_json(store, "--batch-size", "2")

    assert stats["total"] == 6 and stats["guest"] == 4
    assert stats["due"] == {"guest": 1, "customer": 1, "leftover": 0, "total": 2}
    assert out["deleted"] == stats["due"]
    assert count(store) == 4
    assert exists(store, sealed)
