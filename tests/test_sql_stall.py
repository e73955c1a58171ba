"""A frozen PostgreSQL (SIGSTOP: alive, its kernel still accepting connections) bounds every
SQL store call to CART_STORE_TIMEOUT plus a little; after the thaw nothing is lost or applied
twice. The test owns the server: initdb into a temporary directory, its own port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flask_cart import Cart
from flask_cart.errors import StoreUnavailable
from flask_cart.lines import Limits, Line, Owner
from flask_cart.stores.base import CartKey
from flask_cart.stores.sql import SQLStore
from tests.conftest import drop_store_tables

PG_BIN = Path(os.environ.get("CART_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
TIMEOUT = 2.0  # CART_STORE_TIMEOUT's default (libpq connects in whole seconds, at least 2)
LIMITS = Limits()

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres(*args: str) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres OS user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else list(args)


class PrivateServer:
    """A PostgreSQL cluster of the test's own, frozen and thawed by signals."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="flask-cart-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres")
        subprocess.run(
            as_postgres(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ),
            check=True,
            capture_output=True,
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-o",
                options,
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pids(self) -> list[int]:
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
        return [main, *map(int, children)]

    def signal(self, signum: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        subprocess.run(
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"),
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        self.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.signal(signal.SIGCONT)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivateServer]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"no PostgreSQL server binaries in {PG_BIN} (set CART_TEST_PG_BIN)")
    server = PrivateServer()
    yield server
    server.stop()


def seconds_to_error(call: Callable[[], Any]) -> float:
    """Seconds until `call` raises StoreUnavailable (in a thread: a hang fails the test)."""
    box: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            call()
        except StoreUnavailable:
            box["seconds"] = time.monotonic() - started
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT + 5)
    if thread.is_alive():
        pytest.fail(f"still waiting {TIMEOUT + 5} s into a call on a frozen server")
    assert "seconds" in box, box.get("error", "no error at all")
    return float(box["seconds"])


def quantities(store: SQLStore, key: CartKey) -> dict[str, int]:
    return {pid: line.quantity for pid, line in store.load(key).lines.items()}


@pytest.mark.parametrize("engine_kind", ["own", "app"])
def test_a_frozen_postgres_answers_store_unavailable_in_time(
    private_pg: PrivateServer, engine_kind: str
) -> None:
    if engine_kind == "own":
        engine = SQLStore.create_engine(private_pg.url, timeout=TIMEOUT)
    else:  # the app's own engine (as Flask-SQLAlchemy's db.engine): no timeouts of its own
        engine = sa.create_engine(private_pg.url, pool_size=3, max_overflow=0)
    store = SQLStore(engine, table_name=f"carts_{engine_kind}", timeout=TIMEOUT)
    store.create_all()
    customer, guest = CartKey("customer:1"), CartKey("guest-1")
    owner = Owner("1", 3600)
    store.add(customer, Line("a", 1, "1.00"), owner=owner, limits=LIMITS, op="op-1")
    store.add(guest, Line("b", 1, "1.00"), owner=Owner(None, 3600), limits=LIMITS, op="op-g")
    if engine_kind == "app":
        # The app's pool is warm (each frozen call below loses one connection): the app's
        # engine has no connect timeout, which only the app can set.
        with engine.connect(), engine.connect(), engine.connect():
            pass

    def add() -> None:
        store.add(customer, Line("a", 2, "1.00"), owner=owner, limits=LIMITS, op="op-2")

    def merge() -> None:
        Cart("customer:1", store, customer_id="1").merge(Cart("guest-1", store))

    timings = {}
    with private_pg.frozen():
        timings["add"] = seconds_to_error(add)
        timings["load"] = seconds_to_error(lambda: store.load(customer))
        timings["merge"] = seconds_to_error(merge)
    print(
        f"\nseconds to StoreUnavailable, frozen PostgreSQL, {engine_kind} engine, "
        f"timeout {TIMEOUT} s: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
    )
    for name, seconds in timings.items():
        assert seconds < TIMEOUT + 1, (name, seconds)

    # Thawed: the same changes sent again are applied once.
    add()
    add()
    merge()
    assert quantities(store, customer) == {"a": 3, "b": 1}
    assert not store.load(guest).exists
    drop_store_tables(store, engine)
    engine.dispose()
