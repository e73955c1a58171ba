"""`flask cart abandoned` reports that are right: bounded options, a re-check of each cart
just before its report, today's prices, and no live recovery link unless asked.

Carts are aged as in test_cleanup (their last-change time written directly).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

import flask_cart.abandoned
from flask_cart.abandoned import run_abandoned
from flask_cart.config import MAX_BATCH_SIZE, MAX_DAYS, MAX_STAGE_DAYS
from flask_cart.lines import Limits, Line, Owner
from flask_cart.manager import CartManager
from flask_cart.signals import cart_abandoned
from flask_cart.stores.base import CartKey, CartStore
from tests.test_abandoned import GUEST, HOUR, STAGES, abandoned, json_reports
from tests.test_cleanup import YEAR, age_cart, cleanup, put

# --- 5: bounds that match between the settings and the CLI --------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--guest-days", "99999999999"],
        ["--customer-days", str(MAX_DAYS + 1)],
        ["--batch-size", "100000000000000000000"],
        ["--batch-size", str(MAX_BATCH_SIZE + 1)],
    ],
)
def test_cleanup_out_of_range_options_are_usage_errors(
    make_store: Any, store_kind: str, args: list[str]
) -> None:
    store = make_store(store_kind)
    key = put(store, "old", age=timedelta(days=400))
    result = cleanup(store, *args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert store.load(key).exists


@pytest.mark.parametrize(
    "args",
    [
        ["--batch-size", "1e20"],
        ["--batch-size", "100000000000000000000"],
        ["--batch-size", str(MAX_BATCH_SIZE + 1)],
        ["--stage", "999999999d"],
        ["--stage", f"{MAX_STAGE_DAYS + 1}d"],
    ],
)
def test_abandoned_out_of_range_options_are_usage_errors(store: CartStore, args: list[str]) -> None:
    put(store, GUEST, age=2 * HOUR)
    result = abandoned(store, *args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert [r["identifier"] for r in json_reports(store)] == [GUEST]  # nothing was claimed


def test_the_largest_bounds_are_accepted(store: CartStore) -> None:
    put(store, "old", age=timedelta(days=400))
    result = cleanup(store, "--guest-days", str(MAX_DAYS), "--batch-size", str(MAX_BATCH_SIZE))
    assert result.exit_code == 0, (result.output, result.exception)
    result = abandoned(store, "--stage", f"{MAX_STAGE_DAYS}d", "--batch-size", str(MAX_BATCH_SIZE))
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CART_GUEST_DAYS", 1000000),
        ("CART_CUSTOMER_DAYS", MAX_DAYS + 1),
        ("CART_GUEST_DAYS", float("inf")),
        ("CART_ABANDONED_STAGES", ("1h", "999999999d")),
    ],
)
def test_out_of_range_settings_are_refused_at_init(key: str, value: Any) -> None:
    app = Flask(__name__)
    app.config.update(CART_STORE="redis", **{key: value})
    with pytest.raises(ValueError, match=key):
        CartManager(app)


# --- helpers -------------------------------------------------------------------------------


def cli(store: CartStore, *args: str, loader: Any = None, **config: Any) -> tuple[Any, Flask]:
    """`flask cart abandoned ARGS` in an app on `store` with `loader`; (click Result, app)."""
    from tests.test_cleanup import cli_app

    config.setdefault("SERVER_NAME", "shop.test")
    config.setdefault("SECRET_KEY", "abandoned-tests")
    config.setdefault("CART_STORE_TIMEOUT", 30)
    app = cli_app(store, **config)
    if loader is not None:
        app.extensions["cart"].product_loader(loader)
    try:
        result = app.test_cli_runner().invoke(args=["cart", "abandoned", *args])
    finally:
        used = app.extensions["cart"].get_store(app)
        if hasattr(used, "engine"):
            used.engine.dispose()
    return result, app


def lines_of(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, (result.output, result.exception)
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def add(store: CartStore, name: str, product: str, quantity: int, price: str) -> CartKey:
    key = CartKey(name)
    store.add(key, Line(product, quantity, price), owner=Owner(None, ttl=YEAR), limits=Limits())
    return key


# --- 6: each cart is read again just before its report --------------------------------------


def test_a_cart_checked_out_or_changed_after_the_claim_is_not_reported_stale(
    store: CartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports of one claimed batch go out one after another: a cart checked out or
    changed meanwhile is read again before its own report (here one cart per read)."""
    monkeypatch.setattr(flask_cart.abandoned, "RECHECK_FIRST", 1)
    monkeypatch.setattr(flask_cart.abandoned, "RECHECK_WINDOW", 0.0)
    for name in ("x", "y", "z"):
        put(store, name, age=2 * HOUR)
    seen: list[dict[str, Any]] = []

    def receiver(sender: Flask, **kw: Any) -> None:
        if not seen:  # the first report: meanwhile one cart is checked out, one changes
            others = sorted({"x", "y", "z"} - {kw["identifier"]})
            store.take(CartKey(others[0]))
            add(store, others[1], "sku-2", 1, "1.00")
            age_cart(store, CartKey(others[1]), 2 * HOUR)
        seen.append(kw)

    with cart_abandoned.connected_to(receiver):
        first = lines_of(cli(store, "--json")[0])
    assert [r["identifier"] for r in first] == [seen[0]["identifier"]]
    assert len(seen) == 1
    changed = sorted({"x", "y", "z"} - {seen[0]["identifier"]})[1]
    # The changed cart's claim named the version read: its new state is reported next run.
    (again,) = lines_of(cli(store, "--json")[0])
    assert again["identifier"] == changed
    assert sorted(i["product_id"] for i in again["items"]) == ["sku-1", "sku-2"]
    assert again["total"] == "10.99"
    assert lines_of(cli(store, "--json")[0]) == []


def test_a_claimed_batch_is_read_again_before_its_reports(store: CartStore) -> None:
    from flask_cart.abandoned import report_slices
    from flask_cart.catalog import Catalog

    keys = [put(store, f"c{i}", age=2 * HOUR) for i in range(4)]
    (batch,) = list(run_abandoned(store, stages=STAGES))
    store.take(keys[0])
    add(store, "c1", "sku-2", 1, "1.00")
    store.seal(keys[2])
    ((fresh, left_out),) = list(report_slices(store, batch, Catalog(None)))
    assert [r.report.key.identifier for r in fresh] == ["c3"] and left_out == 3
    age_cart(store, keys[1], 2 * HOUR)  # its new version is due: the old claim holds nothing
    assert [r.key.identifier for b in run_abandoned(store, stages=STAGES) for r in b] == ["c1"]


def test_load_many_reads_the_carts_as_they_are_now(store: CartStore) -> None:
    a = put(store, "a", age=2 * HOUR)
    b = put(store, "b", age=2 * HOUR)
    store.take(b)
    states = store.load_many([a, b, CartKey("never")])
    assert [s.exists for s in states] == [True, False, False]
    assert list(states[0].lines) == ["sku-1"]


# --- 7: reports at today's prices ------------------------------------------------------------

CATALOGUE: dict[str, Any] = {
    "sku-a": {"unit_cost": "19.99", "name": "Mug"},
    "sku-b": {"unit_cost": "19.99", "name": "Tea"},
    "sku-c": None,  # withdrawn
    "sku-third": {"unit_cost": "3.333"},
}


def test_reports_are_repriced_through_the_loader(store: CartStore) -> None:
    key = add(store, GUEST, "sku-a", 1, "14.99")
    add(store, GUEST, "sku-b", 1, "9.99")
    add(store, GUEST, "sku-c", 1, "5.00")
    age_cart(store, key, 2 * HOUR)
    sent: list[dict[str, Any]] = []
    with cart_abandoned.connected_to(lambda sender, **kw: sent.append(kw)):
        (report,) = lines_of(cli(store, "--json", loader=CATALOGUE.get)[0])
    assert report["total"] == "39.98"
    by_id = {i["product_id"]: i for i in report["items"]}
    assert by_id["sku-a"]["unit_cost"] == "19.99"
    assert by_id["sku-a"]["price_changed"] is True
    assert by_id["sku-a"]["name"] == "Mug"
    assert by_id["sku-c"]["available"] is False
    (signal,) = sent
    assert signal["snapshot"]["total_cost"] == Decimal("39.98")
    assert set(signal["snapshot"]["items"]) == {"sku-a", "sku-b"}


def test_report_money_has_the_currency_s_minor_digits(store: CartStore) -> None:
    key = add(store, GUEST, "sku-third", 3, "3.333")
    age_cart(store, key, 2 * HOUR)
    (report,) = lines_of(cli(store, "--json", "--dry-run", loader=CATALOGUE.get)[0])
    assert report["total"] == "10.00"
    assert report["items"][0]["unit_cost"] == "3.33"
    assert report["items"][0]["line_total"] == "10.00"
    (yen,) = lines_of(
        cli(store, "--json", "--dry-run", loader=CATALOGUE.get, CART_CURRENCY="JPY")[0]
    )
    assert yen["total"] == "10"


def test_a_cart_with_no_available_line_is_not_reported(store: CartStore) -> None:
    key = add(store, GUEST, "sku-c", 2, "5.00")
    age_cart(store, key, 2 * HOUR)
    sent: list[Any] = []
    with cart_abandoned.connected_to(lambda sender, **kw: sent.append(kw)):
        result, _ = cli(store, loader=CATALOGUE.get)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "reported 0 carts" in result.stdout and "1 left out" in result.stdout
    assert sent == []


def test_the_loader_is_called_once_per_product_per_run(store: CartStore) -> None:
    for i in range(12):
        key = add(store, f"c{i:02}", "sku-a", 1, "14.99")
        add(store, f"c{i:02}", "sku-b", 1, "9.99")
        age_cart(store, key, 2 * HOUR)
    calls: list[str] = []

    def loader(product_id: str) -> Any:
        calls.append(product_id)
        return CATALOGUE.get(product_id)

    assert len(lines_of(cli(store, "--json", "--batch-size", "5", loader=loader)[0])) == 12
    assert sorted(calls) == ["sku-a", "sku-b"]


# --- 8: no live recovery link in a dry run unless asked -------------------------------------


def test_a_dry_run_prints_no_recovery_link_unless_asked(store: CartStore) -> None:
    put(store, GUEST, age=2 * HOUR)
    (plain,) = lines_of(cli(store, "--dry-run", "--json")[0])
    assert plain["recovery_url"] is None
    assert "/recover/" not in cli(store, "--dry-run", "--json")[0].output
    (linked,) = lines_of(cli(store, "--dry-run", "--json", "--with-links")[0])
    assert linked["recovery_url"].startswith("http://shop.test/cart/recover/")
    (real,) = lines_of(cli(store, "--json")[0])  # a real run's reports carry their link
    assert real["recovery_url"].startswith("http://shop.test/cart/recover/")


def test_abandoned_reports_gives_no_recovery_link_unless_asked(store: CartStore) -> None:
    put(store, GUEST, age=2 * HOUR)
    _, app = cli(store, "--help")
    carts = app.extensions["cart"]
    with app.app_context():
        (plain,) = carts.abandoned_reports()
        (linked,) = carts.abandoned_reports(with_links=True)
    assert plain["recovery_url"] is None
    assert linked["recovery_url"].startswith("http://shop.test/cart/recover/")


# --- Redis Cluster: the re-read and the contacts, one slot per cart -----------------------------

from tests.test_redis_cluster import cluster, cluster_nodes, cluster_store  # noqa: E402, F401


def test_on_a_cluster_reports_are_read_again_with_their_contacts(
    cluster_store: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from flask_cart.abandoned import report_slices
    from flask_cart.catalog import Catalog

    keys = [put(cluster_store, f"g{i}", age=2 * HOUR) for i in range(4)]
    assert cluster_store.set_email(keys[1], "ann@example.com")
    assert cluster_store.unsubscribe(keys[2], cluster_store.load(keys[2]).uid)
    (batch,) = list(run_abandoned(cluster_store, stages=STAGES, batch_size=10))
    cluster_store.take(keys[3])
    ((fresh, left_out),) = list(report_slices(cluster_store, batch, Catalog(None)))
    assert sorted((r.report.key.identifier, r.email) for r in fresh) == [
        ("g0", None),
        ("g1", "ann@example.com"),
    ]
    assert left_out == 2
    cluster_store.release_abandoned([r.report for r in fresh])
    assert len([r for b in run_abandoned(cluster_store, stages=STAGES) for r in b]) == 2
