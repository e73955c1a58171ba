"""A login merge's tombstone is no cart: `flask cart cleanup --stats` leaves it out, and
`flask cart cleanup` deletes it once its hour is past (on Redis its TTL does)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.flask.shop import add


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"CART_STORE_TIMEOUT": 30}


def cli_json(app: Any, *args: str) -> dict[str, Any]:
    r = app.test_cli_runner().invoke(args=["cart", "cleanup", *args, "--json"])
    assert r.exit_code == 0, r.output
    return dict(json.loads(r.output.strip().splitlines()[-1]))


#: The SQL stores: there a tombstone is a row cleanup deletes (on Redis its TTL removes it).
SQL_KINDS = pytest.mark.parametrize(
    "store_kind",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ],
)


def later(cart_store: Any, hours: int) -> None:
    real = cart_store.clock
    cart_store.clock = lambda: real() + timedelta(hours=hours)


def merge_a_guest_cart(app: Any) -> None:
    guest = app.test_client()
    assert add(guest, "sku-1", 1, headers={"Idempotency-Key": "a"}).status_code == 200
    assert guest.post("/login/5").status_code == 200


def test_stats_leave_out_a_login_merges_tombstone(app: Any, cart_store: Any) -> None:
    merge_a_guest_cart(app)
    assert add(app.test_client(), "sku-1", 1).status_code == 200  # another guest
    stats = cli_json(app, "--stats")
    assert (stats["total"], stats["guest"], stats["customer"]) == (2, 1, 1), stats


@SQL_KINDS
def test_stats_and_a_dry_run_leave_out_an_expired_tombstone(app: Any, cart_store: Any) -> None:
    merge_a_guest_cart(app)
    later(cart_store, 24 * 40)  # past CART_GUEST_DAYS too
    stats = cli_json(app, "--stats")
    assert (stats["total"], stats["guest"], stats["due"]["guest"]) == (1, 0, 0), stats
    assert cli_json(app, "--dry-run")["would_delete"]["guest"] == 0


@SQL_KINDS
def test_cleanup_deletes_a_tombstone_once_its_hour_is_past(app: Any, cart_store: Any) -> None:
    merge_a_guest_cart(app)
    assert add(app.test_client(), "sku-1", 1).status_code == 200  # another guest
    later(cart_store, 0)
    cli_json(app)  # within its hour: kept
    with cart_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cart_store.table)).scalar() == 3
    later(cart_store, 2)
    result = cli_json(app)
    assert result["deleted"]["total"] == 0  # a tombstone is not counted as a cart
    with cart_store.engine.connect() as conn:
        left = conn.execute(sa.select(cart_store.table.c.identifier)).scalars().all()
    assert len(left) == 2 and "customer:5" in left, left
