"""Real servers: each app of bench/apps.py under gunicorn (2 sync workers), loaded by wrk.

By default Flask-Session, the fair peer and flask-cart on Redis and PostgreSQL. Each app's
tables are created once, before its workers start (two workers creating them at once
collide). Every app is started at once on its own loopback port; then rounds of short wrk runs
(16 connections, 3 s) go over every app and scenario in a shuffled order, so the drift of
a shared, noisy machine hits all of them alike. Medians over the rounds are reported as
requests per second and as ratios to Flask-Session's; an unloaded run (1 connection) gives
median latencies. Before each run the client's cookies are refreshed (a 10-line cart, a
fresh sync snapshot); a non-2xx answer fails the run. Everything is bounded: `--rounds`
rounds, then the servers are stopped and the bench's tables and keys removed. On a shared
machine the ratios move from run to run: compare runs made side by side.

    .venv/bin/python bench/serve.py                 # 3 rounds, about 4 minutes
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

from apps import NAMES, PAGE_ONLY, clean_up, make_app  # noqa: E402
from flask import Flask  # noqa: E402

DEFAULT_APPS = [
    "flask-session(redis)",
    "fair-peer(redis)",
    "flask-cart(redis)",
    "flask-cart(postgres)",
]
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


def start(name: str, port: int, tag: str) -> subprocess.Popen[bytes]:
    """gunicorn serving `name` under `tag`; its tables must exist already (see main)."""
    env = dict(os.environ, BENCH_APP=name, BENCH_TAG=tag)
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
    if name not in PAGE_ONLY:
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
    unknown = [name for name in args.apps if name not in NAMES]
    if unknown:
        parser.error(f"unknown app {unknown[0]!r}; one of {', '.join(NAMES)}")
    ports = {name: BASE_PORT + i for i, name in enumerate(args.apps)}
    tags = {name: f"bench_{os.getpid()}_{i}" for i, name in enumerate(args.apps)}
    apps: dict[str, Flask] = {}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    loaded: dict[tuple[str, str], list[float]] = {}
    unloaded: dict[tuple[str, str], list[float]] = {}
    try:
        for name, port in ports.items():
            apps[name] = make_app(name, tags[name])  # its tables, before its workers start
            servers[name] = start(name, port, tags[name])
        for port in ports.values():
            wait_up(port)
        runs = [(n, s) for n in args.apps for s in SCENARIOS if s == "page" or n not in PAGE_ONLY]
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
        for app in apps.values():
            clean_up(app)
    report(args, loaded, unloaded)


def report(
    args: argparse.Namespace,
    loaded: dict[tuple[str, str], list[float]],
    unloaded: dict[tuple[str, str], list[float]],
) -> None:
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
    peers = [p for p in ("flask-session(redis)", "fair-peer(redis)") if (p, "add") in rps]
    if peers:
        print("\nadds per second, ratio to " + " and to ".join(peers))
        print("(on a shared machine rates and ratios move from run to run: compare side by side)")
        for name in args.apps:
            if name not in peers and (name, "add") in rps:
                ratios = [f"{rps[name, 'add'] / rps[p, 'add']:.2f}x" for p in peers]
                print(f"  {name}: {'  '.join(ratios)}")


if __name__ == "__main__":
    main()
