"""`flask cart abandoned` at scale: N carts, half of them due, on PostgreSQL and Redis.

    .venv/bin/python bench/abandoned_scale.py                  # 1,000,000 carts, both stores
    .venv/bin/python bench/abandoned_scale.py --store redis --carts 100000

Mirrors bench/cleanup_scale.py. For each store it seeds a table / key prefix of its own
with N one-line guest carts (canonical UUID4 identifiers, so each report gets its recovery
link): every other cart due (last changed 1 h to 120 h ago, a third in each default stage's
window, clear of the next stage's start), the others changed within the last 40 minutes
(not due). It then runs

    flask --app bench/abandoned_app.py cart abandoned --json --batch-size N   (the measured run)
    flask --app bench/abandoned_app.py cart abandoned --json --batch-size N   (again: nothing due)

as subprocesses, counting the JSON lines as they stream (never holding them), measures
each one's wall time and peak RSS (``os.wait4`` rusage of that process), checks that every
due cart was reported once and nothing else, and drops the tables / deletes the prefix.

Targets: under 60 s and under 150 MB peak RSS for the measured run, on each store.
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
from collections import Counter
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
APP = "bench/abandoned_app.py"
HOUR_S = 3600
#: Due carts' ages: three bands, one per default stage, clear of the next stage's start
#: (a cart crossing 24 h or 72 h during the run would rightly be reported again).
BANDS = (
    (HOUR_S + 60, 22 * HOUR_S),
    (24 * HOUR_S + 60, 46 * HOUR_S),
    (72 * HOUR_S + 60, 48 * HOUR_S),
)
#: Carts not due: changed within the last 40 minutes (a run of up to 20 minutes leaves
#: them under 1 h; one crossing it during the run would rightly be reported next time).
NOT_DUE_S = 40 * 60
CHUNK = 250_000


def guest_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012x}"


def age_s(i: int) -> int:
    """Seconds since cart i last changed: odd i due (> 1 h), even i not (< 1 h)."""
    if i % 2:
        start, span = BANDS[(i // 2) % 3]
        return start + (i * 7919) % span
    return (i * 7919) % NOT_DUE_S


def run_flask(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `flask --app bench/abandoned_app.py ARGS`; reports by stage, wall time, peak RSS."""
    cmd = [FLASK, "--app", APP, *args]
    stages: Counter[str] = Counter()
    seen = bytearray(1 << 17)  # one bit per cart number (to 1,048,575); a set of 500,000
    # ids would grow this process, whose peak RSS the next child inherits at exec
    distinct = 0
    all_due = True
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
        for line in proc.stdout:
            if line.strip():
                report = json.loads(line)
                stages[report["stage"]] += 1
                n = int(report["identifier"].rsplit("-", 1)[1], 16)
                if not seen[n >> 3] & (1 << (n & 7)):
                    seen[n >> 3] |= 1 << (n & 7)
                    distinct += 1
                all_due &= n % 2 == 1
                assert report["recovery_url"], report
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        err.seek(0)
        errors = err.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{errors}")
    return {
        "command": "flask --app " + APP + " " + " ".join(args),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "reported": sum(stages.values()),
        "distinct": distinct,
        "by_stage": dict(stages),
        "all_due": all_due,
    }


def baseline_rss(env: dict[str, str]) -> float:
    """Peak RSS of the same command doing nothing (`--help`): interpreter and imports."""
    cmd = [FLASK, "--app", APP, "cart", "abandoned", "--help"]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return round(usage.ru_maxrss / 1024, 1)


# --- PostgreSQL --------------------------------------------------------------------------------


def seed_postgres(engine: sa.Engine, table: sa.Table, carts: int) -> None:
    content = json.dumps(
        {
            "lines": lines_to_json({"sku-1": Line("sku-1", 2, "9.99", {"name": "Mug"})}),
            "merged": [],
            "ops": [],
            "sealed": False,
            "uid": "",
        }
    )
    insert = sa.text(
        f"""
        INSERT INTO "{table.name}" (identifier, instance, content, customer_id, is_guest,
                                    version, created_at, updated_at, expires_at)
        SELECT '00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'), 'cart',
               CAST(jsonb_set(CAST(:content AS jsonb), '{{uid}}', to_jsonb(md5(g::text)))
                    AS json),
               NULL, true, 3,
               now() - interval '10 days',
               now() - make_interval(secs => CASE
                    WHEN g % 2 = 0 THEN (g::bigint * 7919) % {NOT_DUE_S}
                    WHEN (g / 2) % 3 = 0 THEN {BANDS[0][0]} + (g::bigint * 7919) % {BANDS[0][1]}
                    WHEN (g / 2) % 3 = 1 THEN {BANDS[1][0]} + (g::bigint * 7919) % {BANDS[1][1]}
                    ELSE {BANDS[2][0]} + (g::bigint * 7919) % {BANDS[2][1]} END),
               now() + interval '30 days'
        FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) AS g
        """
    )
    for lo in range(1, carts + 1, CHUNK):
        with engine.begin() as conn:
            conn.execute(insert, {"content": content, "lo": lo, "hi": min(lo + CHUNK - 1, carts)})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'VACUUM ANALYZE "{table.name}"')


def bench_postgres(carts: int, batch_size: int) -> dict[str, Any]:
    name = f"fc_bench_abandoned_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    store = SQLStore(engine, table_name=name)
    store.create_all()
    env = {"BENCH_STORE": "postgres", "BENCH_PG_URL": PG_URL, "BENCH_TABLE": name}
    try:
        started = time.monotonic()
        seed_postgres(engine, store.table, carts)
        result: dict[str, Any] = {"store": "postgres", "table": name}
        result["seed_s"] = round(time.monotonic() - started, 1)
        result["baseline_rss_mb"] = baseline_rss(env)
        args = ["cart", "abandoned", "--json", "--batch-size", str(batch_size)]
        result["run"] = run_flask(args, env)
        result["again"] = run_flask(args, env)
        return result
    finally:
        drop_tables(store)


# --- Redis ---------------------------------------------------------------------------------------


def seed_redis(store: RedisStore, carts: int) -> None:
    now_ms = int(time.time() * 1000)
    line = encode_line(Line("sku-1", 2, "9.99", {"name": "Mug"}), 1)
    pipe = store.client.pipeline(transaction=False)
    for i in range(1, carts + 1):
        key = store.key(CartKey(guest_id(i)))
        updated = now_ms - age_s(i) * 1000
        pipe.hset(
            key,
            mapping={
                "l:sku-1": line,
                "_v": 3,
                "_n": 1,
                "_c": updated - 86400_000,
                "_u": updated,
                "_k": "",
                "_i": f"{i:016x}",
            },
        )
        pipe.expire(key, 30 * 86400)
        if i % 5000 == 0:
            pipe.execute()
    pipe.execute()


def bench_redis(carts: int, batch_size: int) -> dict[str, Any]:
    prefix = f"fc_bench_abandoned_{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=60)
    store = RedisStore(client, prefix=prefix)
    env = {"BENCH_STORE": "redis", "BENCH_REDIS_URL": REDIS_URL, "BENCH_PREFIX": prefix}
    try:
        started = time.monotonic()
        seed_redis(store, carts)
        result: dict[str, Any] = {"store": "redis", "prefix": prefix}
        result["seed_s"] = round(time.monotonic() - started, 1)
        result["baseline_rss_mb"] = baseline_rss(env)
        args = ["cart", "abandoned", "--json", "--batch-size", str(batch_size)]
        result["run"] = run_flask(args, env)
        result["again"] = run_flask(args, env)
        return result
    finally:
        delete_prefix(client, prefix)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["postgres", "redis", "all"], default="all")
    parser.add_argument("--carts", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    opts = parser.parse_args()
    stores = ["postgres", "redis"] if opts.store == "all" else [opts.store]
    load = os.getloadavg()
    print(
        f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    due = (opts.carts + 1) // 2
    failed = False
    for kind in stores:
        bench = bench_postgres if kind == "postgres" else bench_redis
        result = bench(opts.carts, opts.batch_size)
        run = result["run"]
        ok = (
            run["reported"] == due
            and run["distinct"] == due
            and run["all_due"]
            and result["again"]["reported"] == 0
        )
        failed |= not ok
        print(json.dumps(result), flush=True)
        print(
            f"{kind}: seeded {opts.carts:,} carts ({due:,} due) in {result['seed_s']} s; "
            f"reported {run['reported']:,} ({run['by_stage']}) in {run['wall_s']} s "
            f"(peak RSS {run['peak_rss_mb']} MB, of which {result['baseline_rss_mb']} MB "
            f"interpreter and imports; CPU {run['cpu_s']} s); second run "
            f"{result['again']['wall_s']} s, {result['again']['reported']} reports; "
            f"load average now {os.getloadavg()[0]:.2f}; {'OK' if ok else 'FAILED'}; "
            f"targets < 60 s: {'met' if run['wall_s'] < 60 else 'MISSED'}, < 150 MB: "
            f"{'met' if run['peak_rss_mb'] < 150 else 'MISSED'}",
            flush=True,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
