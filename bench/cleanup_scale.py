"""`flask cart cleanup` at scale: N expired guest carts + N live carts, on PostgreSQL and Redis.

    .venv/bin/python bench/cleanup_scale.py                    # 1,000,000 + 1,000,000, both
    .venv/bin/python bench/cleanup_scale.py --store redis --expired 100000 --live 100000

For each store it seeds a table / key prefix of its own (PostgreSQL: one server-side
``INSERT ... SELECT generate_series`` per chunk, then ``VACUUM ANALYZE`` as autovacuum
would on a table in steady state; Redis: pipelined HSET + EXPIRE), runs

    flask --app bench/cleanup_app.py cart cleanup --stats --json
    flask --app bench/cleanup_app.py cart cleanup --json --batch-size N
    flask --app bench/cleanup_app.py cart cleanup --json --batch-size N   (again: nothing due)

as subprocesses, measures each one's wall time and peak RSS (``os.wait4`` rusage of that
process), checks that every expired cart is gone and every live cart survived, and then
drops the table / deletes the prefix. Live carts are half guests changed within the last
29 days and half customers changed within the last 89 days (so about two thirds of them
are older than the guest retention and must survive anyway). Expired and live carts are
interleaved, so deletions touch every page / hash slot.

Targets: under 60 s and under 150 MB peak RSS for the cleanup, on each store.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leftovers import delete_prefix, drop_tables  # noqa: E402  (bench/ is the script's folder)

from flask_cart.lines import Line, lines_to_json  # noqa: E402
from flask_cart.stores.base import CartKey  # noqa: E402
from flask_cart.stores.redis import RedisStore, encode_line  # noqa: E402
from flask_cart.stores.sql import SQLStore  # noqa: E402

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
FLASK = str(Path(sys.executable).with_name("flask"))
APP = "bench/cleanup_app.py"
DAY_S = 86400
CHUNK = 250_000


def run_flask(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `flask --app bench/cleanup_app.py ARGS`; its JSON answer, wall time and peak RSS."""
    cmd = [FLASK, "--app", APP, *args]
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.PIPE,
            stderr=err,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{errors}")
    return {
        "command": "flask --app " + APP + " " + " ".join(args),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "answer": json.loads(out) if args[-1] != "--help" else None,
    }


def baseline_rss(env: dict[str, str]) -> float:
    """Peak RSS of the same command doing nothing (`--help`): interpreter and imports."""
    return float(run_flask(["cart", "cleanup", "--help"], env)["peak_rss_mb"])


# --- PostgreSQL --------------------------------------------------------------------------------


def seed_postgres(engine: sa.Engine, table: sa.Table, expired: int, live: int) -> None:
    content = json.dumps(
        {"lines": lines_to_json({"sku-1": Line("sku-1", 2, "9.99")}), "merged": [], "sealed": False}
    )
    n = max(expired, live)
    # Row g (1..2n): odd g -> expired guest number (g+1)/2, even g -> live cart number g/2.
    insert = sa.text(
        f"""
        INSERT INTO "{table.name}" (identifier, instance, content, customer_id, is_guest,
                                    version, created_at, updated_at, expires_at)
        SELECT CASE WHEN g % 2 = 1 THEN 'e-' ELSE 'l-' END || (g + 1) / 2,
               'cart', CAST(:content AS json),
               CASE WHEN g % 2 = 0 AND g % 4 = 0 THEN 'c-' || g / 2 END,
               NOT (g % 2 = 0 AND g % 4 = 0),
               3,
               now() - interval '120 days',
               CASE WHEN g % 2 = 1
                    THEN now() - interval '31 days' - make_interval(secs => (g / 2) % (200 * 86400))
                    WHEN g % 4 = 0
                    THEN now() - make_interval(secs => (g / 2) % (89 * 86400))
                    ELSE now() - make_interval(secs => (g / 2) % (29 * 86400))
               END,
               now() + interval '30 days'
        FROM generate_series(:lo, :hi) AS g
        WHERE (g % 2 = 1 AND (g + 1) / 2 <= :expired) OR (g % 2 = 0 AND g / 2 <= :live)
        """
    )
    for lo in range(1, 2 * n + 1, CHUNK):
        hi = min(lo + CHUNK - 1, 2 * n)
        with engine.begin() as conn:
            conn.execute(
                insert, {"content": content, "lo": lo, "hi": hi, "expired": expired, "live": live}
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'VACUUM ANALYZE "{table.name}"')


def count_postgres(engine: sa.Engine, table: sa.Table) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                f"""SELECT count(*) FILTER (WHERE identifier LIKE 'e-%'),
                           count(*) FILTER (WHERE identifier LIKE 'l-%')
                    FROM "{table.name}" """
            )
        ).one()
    return {"expired": int(row[0]), "live": int(row[1])}


def bench_postgres(expired: int, live: int, batch_size: int) -> dict[str, Any]:
    name = f"fc_bench_cleanup_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    store = SQLStore(engine, table_name=name)
    store.create_all()
    env = {"BENCH_STORE": "postgres", "BENCH_PG_URL": PG_URL, "BENCH_TABLE": name}
    try:
        started = time.monotonic()
        seed_postgres(engine, store.table, expired, live)
        seeded = count_postgres(engine, store.table)
        assert seeded == {"expired": expired, "live": live}, seeded
        result: dict[str, Any] = {"store": "postgres", "table": name, "seed_s": 0.0}
        result["seed_s"] = round(time.monotonic() - started, 1)
        result["baseline_rss_mb"] = baseline_rss(env)
        result["stats"] = run_flask(["cart", "cleanup", "--stats", "--json"], env)
        args = ["cart", "cleanup", "--json", "--batch-size", str(batch_size)]
        result["cleanup"] = run_flask(args, env)
        result["again"] = run_flask(args, env)
        result["after"] = count_postgres(engine, store.table)
        return result
    finally:
        drop_tables(store)


# --- Redis ---------------------------------------------------------------------------------------


def seed_redis(store: RedisStore, expired: int, live: int) -> None:
    now_ms = int(time.time() * 1000)
    line = encode_line(Line("sku-1", 2, "9.99"), 1)
    pipe = store.client.pipeline(transaction=False)
    pending = 0
    for i in range(1, max(expired, live) + 1):
        carts = []
        if i <= expired:
            age_s = 31 * DAY_S + i % (200 * DAY_S)
            carts.append((f"e-{i}", "", age_s))
        if i <= live:
            if i % 2 == 0:
                carts.append((f"l-{i}", f"c-{i}", i % (89 * DAY_S)))
            else:
                carts.append((f"l-{i}", "", i % (29 * DAY_S)))
        for identifier, customer, age_s in carts:
            key = store.key(CartKey(identifier))
            updated = now_ms - age_s * 1000
            pipe.hset(
                key,
                mapping={
                    "l:sku-1": line,
                    "_v": 3,
                    "_n": 1,
                    "_c": updated - DAY_S * 1000,
                    "_u": updated,
                    "_k": customer,
                },
            )
            pipe.expire(key, 30 * DAY_S)
            pending += 1
        if pending >= 5000:
            pipe.execute()
            pending = 0
    pipe.execute()


def count_redis(store: RedisStore) -> dict[str, int]:
    counts = {"expired": 0, "live": 0}
    marker = f"{store.prefix}{{".encode()
    for key in store.client.scan_iter(match=f"{store.prefix}*", count=5000):
        kind = key[len(marker) : len(marker) + 2]
        counts["expired" if kind == b"e-" else "live"] += 1
    return counts


def bench_redis(expired: int, live: int, batch_size: int) -> dict[str, Any]:
    prefix = f"fc_bench_cleanup_{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=60)
    store = RedisStore(client, prefix=prefix)
    env = {"BENCH_STORE": "redis", "BENCH_REDIS_URL": REDIS_URL, "BENCH_PREFIX": prefix}
    try:
        started = time.monotonic()
        seed_redis(store, expired, live)
        seeded = count_redis(store)
        assert seeded == {"expired": expired, "live": live}, seeded
        result: dict[str, Any] = {"store": "redis", "prefix": prefix}
        result["seed_s"] = round(time.monotonic() - started, 1)
        result["baseline_rss_mb"] = baseline_rss(env)
        result["stats"] = run_flask(["cart", "cleanup", "--stats", "--json"], env)
        args = ["cart", "cleanup", "--json", "--batch-size", str(batch_size)]
        result["cleanup"] = run_flask(args, env)
        result["again"] = run_flask(args, env)
        result["after"] = count_redis(store)
        return result
    finally:
        delete_prefix(client, prefix)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["postgres", "redis", "all"], default="all")
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    opts = parser.parse_args()
    stores = ["postgres", "redis"] if opts.store == "all" else [opts.store]
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs", flush=True)
    failed = False
    for kind in stores:
        bench = bench_postgres if kind == "postgres" else bench_redis
        result = bench(opts.expired, opts.live, opts.batch_size)
        run = result["cleanup"]
        deleted = run["answer"]["deleted"]["total"]
        ok = (
            result["after"] == {"expired": 0, "live": opts.live}
            and deleted == opts.expired
            and result["again"]["answer"]["deleted"]["total"] == 0
        )
        failed |= not ok
        print(json.dumps(result), flush=True)
        print(
            f"{kind}: seeded {opts.expired:,} expired + {opts.live:,} live in "
            f"{result['seed_s']} s; cleanup deleted {deleted:,} in {run['wall_s']} s "
            f"(peak RSS {run['peak_rss_mb']} MB, of which {result['baseline_rss_mb']} MB "
            f"interpreter and imports; CPU {run['cpu_s']} s); "
            f"stats {result['stats']['wall_s']} s / {result['stats']['peak_rss_mb']} MB; "
            f"second run {result['again']['wall_s']} s; live carts left "
            f"{result['after']['live']:,}/{opts.live:,}; "
            f"{'OK' if ok else 'FAILED'}; targets < 60 s: "
            f"{'met' if run['wall_s'] < 60 else 'MISSED'}, < 150 MB: "
            f"{'met' if run['peak_rss_mb'] < 150 else 'MISSED'}",
            flush=True,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
