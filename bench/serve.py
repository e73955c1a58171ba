"""Real servers: each app of bench/apps.py under gunicorn (2 sync workers), loaded by wrk.

Every app is started at once on its own loopback port; then rounds of short wrk runs
(16 connections, 3 s) go over every app and scenario in a shuffled order, so the drift of
a shared, noisy machine hits all of them alike. Medians over the rounds are reported as
requests per second and as ratios to Flask-Session's; an unloaded run (1 connection) gives
median latencies. Before each run the client's cookies are refreshed (a 10-line cart, a
fresh sync snapshot). Everything is bounded: `--rounds` rounds, then the servers are
stopped and the bench's tables and keys removed.

    .venv/bin/python bench/serve.py                 # 3 rounds, about 5 minutes
    .venv/bin/python bench/serve.py --rounds 1 'flask-cart(redis)' 'flask-session(redis)'
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from apps import NAMES, drop_tables, make_app  # noqa: E402

DEFAULT_APPS = [n for n in NAMES if n != "bare+session"]
SCENARIOS = ("page", "view", "add")
BASE_PORT = 18100
ADD_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = '{"product_id": "p' .. (counter % 10) .. '", "quantity": 1}'
  return wrk.format(nil, "/cart/items", nil, body)
end
"""


def start(name: str, port: int, table: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BENCH_APP=name, BENCH_TABLE=table)
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--chdir",
        str(HERE),
        "wsgi:app",
    ]
    return subprocess.Popen(command, env=env, start_new_session=True)


def wait_up(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not start")


def cookies_for(name: str, port: int) -> str:
    """A browser holding a 10-line cart: its Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    if not name.startswith("bare"):
        for i in range(10):
            body = json.dumps({"product_id": f"p{i}", "quantity": 1}).encode()
            request = urllib.request.Request(
                f"{base}/cart/items", data=body, headers={"Content-Type": "application/json"}
            )
            opener.open(request, timeout=5).read()
        opener.open(f"{base}/cart", timeout=5).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def wrk(port: int, scenario: str, cookie: str, connections: int, seconds: int) -> dict[str, float]:
    path = "/cart" if scenario == "view" else "/"
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(ADD_SCRIPT)
    if scenario == "add":
        command += ["-s", script.name]
    command.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30).stdout
    os.unlink(script.name)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None or median is None or errors:
        raise RuntimeError(f"wrk failed on port {port} {scenario}:\n{out[-800:]}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[median.group(2)]
    return {"rps": float(rate.group(1)), "p50_ms": float(median.group(1)) * scale}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apps", nargs="*", default=DEFAULT_APPS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/serve.py needs wrk: apt-get install wrk")
    table = f"bench_{os.getpid()}"
    ports = {name: BASE_PORT + i for i, name in enumerate(args.apps)}
    servers = {
        name: start(name, port, f"{table}_{i}") for i, (name, port) in enumerate(ports.items())
    }
    loaded: dict[tuple[str, str], list[float]] = {}
    unloaded: dict[tuple[str, str], list[float]] = {}
    try:
        for port in ports.values():
            wait_up(port)
        runs = [(n, s) for n in args.apps for s in SCENARIOS if not (n == "bare" and s != "page")]
        for _ in range(args.rounds):
            random.shuffle(runs)
            for name, scenario in runs:
                cookie = cookies_for(name, ports[name])
                result = wrk(ports[name], scenario, cookie, 16, args.seconds)
                loaded.setdefault((name, scenario), []).append(result["rps"])
                cookie = cookies_for(name, ports[name])
                result = wrk(ports[name], scenario, cookie, 1, args.seconds)
                unloaded.setdefault((name, scenario), []).append(result["p50_ms"])
    finally:
        for server in servers.values():
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers.values():
            server.wait(timeout=30)
        for i, name in enumerate(ports):
            if name.startswith("flask-cart"):
                os.environ["BENCH_TABLE"] = f"{table}_{i}"
                drop_tables(make_app(name))
    report(args, loaded, unloaded)


def report(args: argparse.Namespace, loaded: dict, unloaded: dict) -> None:  # type: ignore[type-arg]
    rps = {k: statistics.median(v) for k, v in loaded.items()}
    p50 = {k: statistics.median(v) for k, v in unloaded.items()}
    print(
        f"gunicorn 2 sync workers, wrk 16 connections, {args.rounds} rounds of {args.seconds} s"
        " (medians); latency: 1 connection"
    )
    print(f"{'app':24}" + "".join(f"{s + ' req/s':>13}{s + ' p50 ms':>13}" for s in SCENARIOS))
    for name in args.apps:
        cells = ""
        for s in SCENARIOS:
            if (name, s) in rps:
                cells += f"{rps[name, s]:13,.0f}{p50[name, s]:13.2f}"
            else:
                cells += f"{'-':>13}{'-':>13}"
        print(f"{name:24}{cells}")
    peer = ("flask-session(redis)", "add")
    if peer in rps:
        print("\nadds per second, ratio to Flask-Session's:")
        for name in args.apps:
            if name.startswith("flask-cart") and (name, "add") in rps:
                print(f"  {name}: {rps[name, 'add'] / rps[peer]:.2f}x")


if __name__ == "__main__":
    main()
