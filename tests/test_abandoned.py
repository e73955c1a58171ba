"""`flask cart abandoned`: stages, exactly-once claims, resets and races, on every store.

Carts are aged as in test_cleanup (their last-change time written directly, never by
sleeping); a real change (an add) is what resets a cart's stages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_cart.abandoned import Stage, run_abandoned
from flask_cart.config import parse_stage, parse_stages
from flask_cart.lines import Limits, Line, Owner
from flask_cart.signals import cart_abandoned
from flask_cart.stores.base import CartKey, CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.test_cleanup import YEAR, age_cart, cli_app, now_of, put
from tests.test_concurrency import run_together

HOUR = timedelta(hours=1)
STAGES = parse_stages(["1h", "24h", "72h"])


def report(store: CartStore, **options: Any) -> list[tuple[str, str]]:
    """Run the store-level pass; (identifier, stage label) of each report, in order."""
    options.setdefault("stages", STAGES)
    found: list[tuple[str, str]] = []
    for batch in run_abandoned(store, **options):
        found += [(r.key.identifier, r.stage.label) for r in batch]
    return sorted(found)


def abandoned(store: CartStore, *args: str, **config: Any) -> Any:
    """`flask cart abandoned ARGS` in an app on `store`; the click Result."""
    config.setdefault("SERVER_NAME", "shop.test")
    config.setdefault("SECRET_KEY", "abandoned-tests")
    app = cli_app(store, **config)
    try:
        return app.test_cli_runner(mix_stderr=False).invoke(args=["cart", "abandoned", *args])
    except TypeError:  # click 8.2 dropped mix_stderr (stderr is always apart)
        return app.test_cli_runner().invoke(args=["cart", "abandoned", *args])
    finally:
        used = app.extensions["cart"].get_store(app)
        if isinstance(used, SQLStore):
            used.engine.dispose()


def json_reports(store: CartStore, *args: str, **config: Any) -> list[dict[str, Any]]:
    result = abandoned(store, "--json", *args, **config)
    assert result.exit_code == 0, (result.output, result.exception)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# --- stages ----------------------------------------------------------------------------


def test_durations_parse() -> None:
    assert parse_stage("30s") == Stage("30s", 30)
    assert parse_stage("15m").seconds == 900
    assert parse_stage("1h").seconds == 3600
    assert parse_stage("2d").seconds == 172800
    for bad in ("", "1", "h", "0h", "-1h", "1.5h", "1w", "1 h", "1h30m", "\uff11h"):
        with pytest.raises(ValueError):
            parse_stage(bad)


def test_stages_sorted_and_same_duration_refused() -> None:
    assert [s.label for s in parse_stages(["72h", "1h", "24h"])] == ["1h", "24h", "72h"]
    with pytest.raises(ValueError, match="same"):
        parse_stages(["1h", "60m"])
    with pytest.raises(ValueError):
        parse_stages([])


# --- due, once, reset --------------------------------------------------------------------


def test_due_per_stage_latest_stage_only(store: CartStore) -> None:
    put(store, "fresh", age=timedelta(minutes=30))
    put(store, "two-hours", age=2 * HOUR)
    put(store, "thirty-hours", age=30 * HOUR, customer="c-1")
    put(store, "eighty-hours", age=80 * HOUR)
    assert report(store) == [
        ("eighty-hours", "72h"),
        ("thirty-hours", "24h"),
        ("two-hours", "1h"),
    ]


def test_reported_once_per_stage_then_at_the_next(store: CartStore) -> None:
    key = put(store, "a", age=2 * HOUR)
    assert report(store) == [("a", "1h")]
    assert report(store) == []
    age_cart(store, key, 25 * HOUR)
    assert report(store) == [("a", "24h")]
    assert report(store) == []
    age_cart(store, key, 73 * HOUR)
    assert report(store) == [("a", "72h")]
    assert report(store) == []


def test_a_change_resets_the_stages(store: CartStore) -> None:
    key = put(store, "a", age=2 * HOUR)
    assert report(store) == [("a", "1h")]
    store.add(key, Line("sku-2", 1, "1.00"), owner=Owner(None, ttl=YEAR), limits=Limits())
    assert report(store) == []  # changed just now: not due
    age_cart(store, key, 2 * HOUR)
    assert report(store) == [("a", "1h")]


def test_checked_out_deleted_merged_and_empty_never_reported(store: CartStore) -> None:
    owner = Owner(None, ttl=YEAR)
    out = put(store, "checked-out", age=2 * HOUR)
    store.take(out)
    gone = put(store, "deleted", age=2 * HOUR)
    store.delete(gone)
    sealed = put(store, "merged", age=2 * HOUR)
    store.seal(sealed)
    age_cart(store, sealed, 2 * HOUR)
    empty = put(store, "emptied", age=2 * HOUR)
    store.clear(empty, owner=owner)
    age_cart(store, empty, 2 * HOUR)
    assert report(store) == []


def test_a_cart_made_again_after_checkout_is_a_new_cart(store: CartStore) -> None:
    key = put(store, "a", age=2 * HOUR)
    assert report(store) == [("a", "1h")]
    store.take(key)
    put(store, "a", age=2 * HOUR)  # same key, version count starting over
    assert report(store) == [("a", "1h")]


def test_dry_run_records_nothing(store: CartStore) -> None:
    put(store, "a", age=2 * HOUR)
    assert report(store, dry_run=True) == [("a", "1h")]
    assert report(store, dry_run=True) == [("a", "1h")]
    assert report(store) == [("a", "1h")]


def test_limit_caps_reports_per_run(store: CartStore) -> None:
    for i in range(7):
        put(store, f"c{i}", age=2 * HOUR)
    assert len(report(store, limit=3, batch_size=2)) == 3
    assert len(report(store, limit=3, batch_size=5)) == 3
    assert len(report(store, limit=3)) == 1
    assert report(store) == []


def test_batches_cover_everything(store: CartStore) -> None:
    for i in range(11):
        put(store, f"c{i:02}", age=(2 + i) * HOUR)
    assert len(report(store, batch_size=3)) == 11


def test_a_run_stopped_after_a_batch_claimed_that_batch_only(store: CartStore) -> None:
    """The next batch is read ahead, never claimed ahead: a run stopped (killed) after its
    first batch leaves every other due cart to the next run."""
    for i in range(9):
        put(store, f"c{i}", age=(2 + i) * HOUR)
    run = run_abandoned(store, stages=[parse_stage("1h")], batch_size=3)
    first = next(run)
    run.close()
    assert 1 <= len(first) <= 3
    later = report(store, stages=[parse_stage("1h")])
    assert len(later) == 9 - len(first)
    assert {r.key.identifier for r in first}.isdisjoint(i for i, _ in later)


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_an_app_s_flask_sqlalchemy_db_is_used_from_the_read_ahead(
    make_store: Any, kind: str
) -> None:
    """With ``CartManager(app, db=db)`` the store's engine is ``db.engine``, which needs
    the app context: the read-ahead thread runs in a copy of the caller's."""
    from flask_sqlalchemy import SQLAlchemy

    store = make_store(kind)

    from flask_cart import CartManager

    for i in range(7):
        put(store, f"c{i}", age=(2 + i) * HOUR)
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=store.engine.url.render_as_string(hide_password=False),
        CART_TABLE_NAME=store.table.name,
        SERVER_NAME="shop.test",
        SECRET_KEY="abandoned-tests",
    )
    db = SQLAlchemy(app)
    carts = CartManager(app, db=db)
    try:
        with app.app_context():
            assert len(carts.abandoned_reports(["1h"])) == 7
        result = app.test_cli_runner().invoke(
            args=["cart", "abandoned", "--json", "--stage", "1h", "--batch-size", "2"]
        )
        assert result.exit_code == 0, (result.output, result.exception)
        assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) == 7
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_dry_run_lists_each_batch_as_it_is_when_its_turn_comes(store: CartStore) -> None:
    """Carts changed after the first batch was handed over are no longer due: a dry run
    does not list them as an earlier read saw them."""
    keys = [put(store, f"c{i:02}", age=(2 + i) * HOUR) for i in range(12)]
    run = run_abandoned(store, stages=[parse_stage("1h")], batch_size=3, dry_run=True)
    first = next(run)
    listed = {r.key.identifier for r in first}
    for key in keys:
        if key.identifier not in listed:
            store.add(key, Line("sku-2", 1, "1.00"), owner=Owner(None, ttl=YEAR), limits=Limits())
    rest = [r for b in run for r in b]
    assert rest == [], [r.key.identifier for r in rest]


def test_a_redis_client_decoding_with_its_own_encoding(make_store: Any) -> None:
    """The claim script's answer counts bytes: a client decoding responses as latin-1
    gets its cart back whole, as it wrote it."""
    import redis

    base = make_store("redis")
    options = base.client.connection_pool.connection_kwargs
    client = redis.Redis(
        host=options["host"],
        port=options["port"],
        db=options.get("db", 0),
        decode_responses=True,
        encoding="latin-1",
    )
    store = RedisStore(client, prefix=base.prefix)  # the base store's prefix: cleaned up
    key = CartKey("é-guest")
    store.add(
        key,
        Line("sku-é", 1, "9.99", {"name": "Café"}),
        owner=Owner(None, ttl=YEAR),
        limits=Limits(),
    )
    age_cart(store, key, 2 * HOUR)
    try:
        (found,) = [r for b in run_abandoned(store, stages=STAGES) for r in b]
    finally:
        client.close()
    assert found.key == key
    assert found.state.lines["sku-é"].extra == {"name": "Café"}


@pytest.mark.postgres
def test_a_locked_table_fails_the_run_within_the_walk_timeout(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk's SELECT is bounded like a change: a table another session holds locked
    fails the run with StoreUnavailable after WALK_TIMEOUT (2 s here), it never hangs."""
    import time

    import sqlalchemy as sa

    from flask_cart.errors import StoreUnavailable
    from flask_cart.stores import sql_abandoned

    monkeypatch.setattr(sql_abandoned, "WALK_TIMEOUT", 2.0)
    store = make_store("postgres", timeout=2.0)
    put(store, "a", age=2 * HOUR)
    with store.engine.connect() as locker:
        locker.execute(sa.text(f'LOCK TABLE "{store.table.name}" IN ACCESS EXCLUSIVE MODE'))
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            report(store)
        waited = time.monotonic() - started
        locker.rollback()
    assert waited < store.timeout + 3, waited
    assert report(store) == [("a", "1h")]


def test_report_carries_the_cart_and_a_stable_id(store: CartStore) -> None:
    key = put(store, "a", age=2 * HOUR, customer="c-9")
    (first,) = [r for b in run_abandoned(store, stages=STAGES, dry_run=True) for r in b]
    (claimed,) = [r for b in run_abandoned(store, stages=STAGES) for r in b]
    assert first.report_id == claimed.report_id
    assert claimed.key == key
    assert claimed.state.customer_id == "c-9"
    assert list(claimed.state.lines) == ["sku-1"]
    assert abs((now_of(store) - claimed.state.updated_at) - 2 * HOUR) < timedelta(minutes=1)


def test_a_claim_lost_to_a_concurrent_change_is_not_reported(store: CartStore) -> None:
    """A cart changed between the read and the claim is not reported as it was read.

    SQL reads a batch, then claims it only at the versions read: the changed cart's claim
    is lost, and the next run reports it as it is now. Redis reads and claims in one
    script, after the change: it reports the changed cart. Either way, one report for
    "a", of the cart after the change.
    """
    key = put(store, "a", age=2 * HOUR)
    put(store, "b", age=2 * HOUR)

    def touch(keys: list[CartKey]) -> None:
        if CartKey("a") in keys:
            store.add(key, Line("sku-2", 1, "1.00"), owner=Owner(None, ttl=YEAR), limits=Limits())
            age_cart(store, key, 2 * HOUR)  # due again, but not the cart that was read

    runs = [
        [r for b in run_abandoned(store, stages=STAGES, on_batch=touch) for r in b],
        [r for b in run_abandoned(store, stages=STAGES) for r in b],
    ]
    reports = [r for run in runs for r in run]
    assert sorted(r.key.identifier for r in reports) == ["a", "b"]
    (a,) = [r for r in reports if r.key.identifier == "a"]
    assert set(a.state.lines) == {"sku-1", "sku-2"}
    if isinstance(store, SQLStore):
        assert [r.key.identifier for r in runs[0]] == ["b"]


def test_two_runs_at_once_report_each_cart_once(make_store: Any, store_kind: str) -> None:
    store = make_store(store_kind)
    for i in range(60):
        put(store, f"c{i:02}", age=(2 + i) * HOUR)
    found: list[list[tuple[str, str]]] = [[], [], []]

    def worker(n: int) -> Any:
        return lambda: found[n].extend(report(store, batch_size=7))

    assert run_together([worker(0), worker(1), worker(2)]) == []
    everything = found[0] + found[1] + found[2]
    assert len(everything) == 60
    assert len(set(everything)) == 60


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_two_processes_at_once_report_each_cart_once(make_store: Any, kind: str) -> None:
    """Two `flask cart abandoned --json` processes on one store: each report once."""
    store = make_store(kind)
    for i in range(200):
        put(store, f"c{i:03}", age=(2 + i % 100) * HOUR)
    app_file = Path(__file__).with_name("abandoned_app.py")
    env_store = (
        {"T_STORE": "redis", "T_PREFIX": store.prefix}
        if isinstance(store, RedisStore)
        else {
            "T_STORE": "sql",
            "T_URL": store.engine.url.render_as_string(hide_password=False),
            "T_TABLE": store.table.name,
        }
    )
    import os

    env = {**os.environ, **env_store, "PYTHONPATH": str(Path(__file__).parent.parent)}
    flask = str(Path(sys.executable).with_name("flask"))
    cmd = [flask, "--app", str(app_file), "cart", "abandoned", "--json", "--batch-size", "9"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    ids = [json.loads(line)["identifier"] for out in outs for line in out.splitlines()]
    assert sorted(ids) == [f"c{i:03}" for i in range(200)]


# --- the command -------------------------------------------------------------------------


GUEST = "5f0c7c4e-2a0e-4c1d-9d7e-3f2b8a6c1e00"


def test_json_shape_and_signal(store: CartStore) -> None:
    put(store, GUEST, age=2 * HOUR)
    put(store, "customer:c-1", age=30 * HOUR, customer="c-1")
    sent: list[dict[str, Any]] = []

    def receiver(sender: Flask, **kwargs: Any) -> None:
        sent.append(kwargs)

    with cart_abandoned.connected_to(receiver):
        reports = json_reports(store)
    by_id = {r["identifier"]: r for r in reports}
    assert set(by_id) == {GUEST, "customer:c-1"}
    guest = by_id[GUEST]
    assert set(guest) >= {
        "identifier",
        "instance",
        "customer_id",
        "stage",
        "updated_at",
        "total",
        "items",
        "recovery_url",
        "report_id",
    }
    assert guest["instance"] == "cart"
    assert guest["customer_id"] is None
    assert guest["stage"] == "1h"
    assert guest["total"] == "9.99"
    assert guest["updated_at"].endswith("Z")
    assert guest["items"][0]["product_id"] == "sku-1"
    assert guest["items"][0]["quantity"] == 1
    assert guest["recovery_url"].startswith("http://shop.test/")
    assert by_id["customer:c-1"]["customer_id"] == "c-1"
    assert by_id["customer:c-1"]["stage"] == "24h"
    assert by_id["customer:c-1"]["recovery_url"].startswith("http://shop.test/")
    assert {s["identifier"] for s in sent} == {GUEST, "customer:c-1"}
    signal = next(s for s in sent if s["identifier"] == GUEST)
    assert signal["stage"] == "1h"
    assert signal["customer_id"] is None
    assert signal["instance"] == "cart"
    assert signal["snapshot"]["items"]["sku-1"]["quantity"] == 1
    assert signal["recovery_url"] == guest["recovery_url"]
    assert signal["report_id"] == guest["report_id"]
    assert json_reports(store) == []


def test_an_identifier_no_link_can_name_is_reported_with_a_warning(store: CartStore) -> None:
    """A cart made through the Cart API with an identifier of its own (not a guest id nor
    ``customer:<id>``) has no recovery link: reported with recovery_url null, and said."""
    put(store, "order-42", age=2 * HOUR)
    result = abandoned(store, "--json")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["recovery_url"] is None
    assert "recovery_url" in result.stderr and "1 cart" in result.stderr


def test_command_text_summary_and_stage_options(store: CartStore) -> None:
    put(store, "a", age=2 * HOUR)
    put(store, "b", age=40 * HOUR)
    result = abandoned(store, "--stage", "30m", "--stage", "2d")
    assert result.exit_code == 0, result.output
    assert "reported 2 carts" in result.stdout
    assert json_reports(store, "--stage", "30m", "--stage", "2d") == []


def test_command_stages_default_to_config(store: CartStore) -> None:
    put(store, "a", age=2 * HOUR)
    assert json_reports(store, CART_ABANDONED_STAGES=("3h",)) == []
    assert [r["stage"] for r in json_reports(store, CART_ABANDONED_STAGES=("90m",))] == ["90m"]


def test_command_dry_run_sends_nothing_and_records_nothing(store: CartStore) -> None:
    put(store, "a", age=2 * HOUR)
    sent: list[Any] = []
    with cart_abandoned.connected_to(lambda sender, **kw: sent.append(kw)):
        dry = json_reports(store, "--dry-run")
        text = abandoned(store, "--dry-run")
    assert [r["identifier"] for r in dry] == ["a"]
    assert "would report 1 cart" in text.stdout
    assert sent == []
    assert [r["identifier"] for r in json_reports(store)] == ["a"]


def test_command_limit(store: CartStore) -> None:
    for i in range(5):
        put(store, f"c{i}", age=2 * HOUR)
    assert len(json_reports(store, "--limit", "2")) == 2
    assert len(json_reports(store, "--limit", "2")) == 2
    assert len(json_reports(store)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "soon"], "soon"),
        (["--stage", "0h"], "0h"),
        (["--stage", "1h", "--stage", "60m"], "same"),
        (["--limit", "0"], "limit"),
    ],
)
def test_bad_arguments_are_usage_errors(make_store: Any, args: list[str], message: str) -> None:
    result = abandoned(make_store("sqlite"), *args)
    assert result.exit_code == 2
    assert message in result.output + result.stderr


def test_bad_configured_stages_refused_at_init() -> None:
    app = Flask(__name__)
    app.config.update(CART_STORE="redis", CART_ABANDONED_STAGES=("1h", "later"))
    from flask_cart.manager import CartManager

    with pytest.raises(ValueError, match="CART_ABANDONED_STAGES"):
        CartManager(app)


def test_without_server_name_a_clear_error_and_nothing_recorded(store: CartStore) -> None:
    put(store, GUEST, age=2 * HOUR)
    result = abandoned(store, SERVER_NAME=None)
    assert result.exit_code == 1
    assert "SERVER_NAME" in result.stderr
    dry = abandoned(store, "--dry-run", "--json", "--with-links", SERVER_NAME=None)
    assert dry.exit_code == 0
    assert json.loads(dry.stdout)["recovery_url"] is None
    assert "SERVER_NAME" in dry.stderr
    assert [r["identifier"] for r in json_reports(store)] == [GUEST]  # still due


def test_without_secret_key_a_clear_error_before_anything_is_claimed(store: CartStore) -> None:
    put(store, GUEST, age=2 * HOUR)
    result = abandoned(store, SECRET_KEY=None)
    assert result.exit_code == 1
    assert "SECRET_KEY" in result.stderr and "nothing was reported" in result.stderr
    assert [r["identifier"] for r in json_reports(store)] == [GUEST]


def test_sql_claims_table_cleaned_up_with_its_carts(make_store: Any) -> None:
    import sqlalchemy as sa

    from flask_cart.cleanup import Retention, run_cleanup

    store = make_store("sqlite")
    assert isinstance(store, SQLStore)
    keep = put(store, "keep", age=2 * HOUR)
    gone = put(store, "gone", age=2 * HOUR)
    assert len(report(store)) == 2
    store.take(gone)
    run_cleanup(store, Retention())
    claims = store.abandoned_table
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(claims.c.cart_id)).scalars().all()
    assert len(left) == 1
    assert report(store) == []
    assert store.load(keep).exists
