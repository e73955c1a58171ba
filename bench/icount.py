"""CPU per request of flask-cart and its peers: instructions counted by callgrind.

Each app of bench/apps.py first holds a 10-line cart, then runs N requests of one scenario
(page, view, add) through the Flask test client under ``valgrind --tool=callgrind``; the cost
of one request is (count at N2 requests - count at N1) / (N2 - N1), so start-up, imports and
the set-up cancel out (default 20 and 120). Instruction counts do not drift with machine
noise (PYTHONHASHSEED is fixed); store latency is not in them.

- flask-cart runs with apps.COUNT_CONFIG (a sync window and a store timeout longer than a
  run under valgrind);
- after the set-up, a full ``gc.collect()``: else the collection that start-up's leftovers
  trigger (about 17M instructions) lands inside the counted requests of some scenarios and
  not of others, and start-up no longer cancels out;
- every request checks its status: a non-2xx answer fails the run and its cell reads
  ``err``, never a number;
- ``bare+fc-cookies`` is bare Flask whose browser sends the two cookies flask-cart set for a
  10-line cart: the floor to compare flask-cart's page with.

Keys go to Redis database 12 under ``bench_<pid>:``, tables are named ``bench_<pid>``; each
counting run removes what it wrote.

    .venv/bin/python bench/icount.py -j 2                                # every app
    .venv/bin/python bench/icount.py -j 2 --requests 10,60 'fair-peer(redis):view,add'
"""

from __future__ import annotations

import argparse
import gc
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import callgrind  # noqa: E402
from apps import NAMES, PAGE_ONLY, clean_up, make_app  # noqa: E402
from flask import Flask  # noqa: E402

SCENARIOS = ("page", "view", "add")
CART_COOKIES = ("guest_cart_id", "cart_sync")
# The goals: (app, scenario, peer, the peer's scenario, at most this ratio).
GOALS = [
    ("flask-cart(redis)", "add", "fair-peer(redis)", "add", 1.10),
    ("flask-cart(redis)", "view", "fair-peer(redis)", "view", 0.75),
    ("flask-cart(postgres)", "add", "fair-peer(redis)", "add", 1.25),
    ("flask-cart(mariadb)", "add", "fair-peer(redis)", "add", 1.35),
    ("flask-cart(redis)", "page", "bare+fc-cookies", "page", 1.05),
]


class Failed(Exception):
    """A request of a counting run did not answer 2xx."""


def check(response: Any, what: str) -> None:
    if response.status_code // 100 != 2:
        body = response.get_data(as_text=True)[:400]
        raise Failed(f"{what}: HTTP {response.status_code}: {body}")


def add_ten(client: Any) -> None:
    for i in range(10):
        response = client.post("/cart/items", json={"product_id": f"p{i}", "quantity": 1})
        check(response, f"set-up add {i}")


def build(name: str, made: list[Flask]) -> Any:
    """A test client of `name` holding its 10-line cart (or the cookies of one); every app
    built goes to `made`, to be cleaned up."""
    if name == "bare+fc-cookies":
        shop = make_app("flask-cart(redis)", counting=True)
        made.append(shop)
        shopper = shop.test_client()
        add_ten(shopper)
        made.append(make_app(name))
        client = made[-1].test_client()
        for name in CART_COOKIES:
            cookie = shopper.get_cookie(name)
            if cookie is None:
                raise Failed(f"flask-cart set no {name} cookie")
            client.set_cookie(name, cookie.value)
        return client
    made.append(make_app(name, counting=True))
    client = made[-1].test_client()
    if name != "bare":  # bare+session: logs in (a login-sized session cookie)
        add_ten(client)
    return client


def run_one(name: str, scenario: str, requests: int) -> None:
    """Inside valgrind: the set-up, a full collection, then `requests` requests."""
    made: list[Flask] = []
    try:
        client = build(name, made)
        gc.collect()
        response = None
        for i in range(requests):
            if scenario == "page":
                response = client.get("/")
            elif scenario == "view":
                response = client.get("/cart")
            else:
                body = {"product_id": f"p{i % 10}", "quantity": 1}
                response = client.post("/cart/items", json=body)
            check(response, f"{scenario} {i}")
        if response is not None and (name == "bare+fc-cookies" or name.startswith("flask-cart")):
            sent = response.request.headers.get("Cookie", "")  # the same cookies on both sides
            if not all(f"{cookie}=" in sent for cookie in CART_COOKIES):
                raise Failed(f"no cart cookies sent: {sent[:99]}")
    except Failed as exc:
        sys.stderr.write(f"icount: {name} {exc}\n")
        sys.exit(3)
    finally:
        for app in made:
            try:
                clean_up(app)
            except Exception as exc:  # keep the count; say what was left behind
                sys.stderr.write(f"icount: clean-up failed: {type(exc).__name__}: {exc}\n")


Counts = dict[tuple[str, str, int], Future[int]]


def per_request(counts: Counts, name: str, scenario: str, low: int, high: int) -> float:
    """Instructions of one request: the difference of the two runs' counts, per request."""
    return (counts[name, scenario, high].result() - counts[name, scenario, low].result()) / (
        high - low
    )


def wanted_cells(specs: list[str], parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """APP or APP:SCENARIO,... -> the scenarios to count per app."""
    wanted: dict[str, list[str]] = {}
    for spec in specs:
        name, _, scenarios = spec.partition(":")
        if name not in NAMES:
            parser.error(f"unknown app {name!r}; one of {', '.join(NAMES)}")
        asked = scenarios.split(",") if scenarios else SCENARIOS
        served = [s for s in SCENARIOS if s == "page" or name not in PAGE_ONLY]
        wanted[name] = [s for s in served if s in asked]
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apps", nargs="*", help="APP or APP:SCENARIO,... (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="valgrind runs at a time")
    parser.add_argument("--requests", default="20,120", help="N1,N2: the two runs' requests")
    parser.add_argument(
        "--inner", nargs=3, metavar=("APP", "SCENARIO", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.inner:
        run_one(args.inner[0], args.inner[1], int(args.inner[2]))
        return
    low, high = (int(n) for n in args.requests.split(","))
    wanted = wanted_cells(args.apps or list(NAMES), parser)
    table: dict[tuple[str, str], float] = {}
    print(f"{'app':24}" + "".join(f"{s + ' kinstr':>14}" for s in SCENARIOS), end="")
    print(f"   ({low} and {high} requests)", flush=True)
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        jobs = {
            (name, scenario, n): pool.submit(
                callgrind.instructions, __file__, "--inner", name, scenario, str(n)
            )
            for name, scenarios in wanted.items()
            for scenario in scenarios
            for n in (low, high)
        }
        for name, scenarios in wanted.items():
            cells = []
            for scenario in SCENARIOS:
                if scenario not in scenarios:
                    cells.append(f"{'-':>14}")
                    continue
                try:
                    table[name, scenario] = per_request(jobs, name, scenario, low, high)
                    cells.append(f"{table[name, scenario] / 1000:14,.0f}")
                except RuntimeError as exc:
                    cells.append(f"{'err':>14}")
                    print(f"  {name} {scenario}: {str(exc)[-300:]}", file=sys.stderr, flush=True)
            print(f"{name:24}" + "".join(cells), flush=True)
    print("\ngoals (instructions per request, ratio to the peer)")
    for app, scenario, peer, peer_scenario, limit in GOALS:
        if (app, scenario) in table and (peer, peer_scenario) in table:
            ratio = table[app, scenario] / table[peer, peer_scenario]
            verdict = "met" if ratio <= limit else "not met"
            print(
                f"  {app} {scenario} / {peer} {peer_scenario}: {ratio:.2f}x"
                f" (goal <= {limit:.2f}x, {verdict})"
            )


if __name__ == "__main__":
    main()
