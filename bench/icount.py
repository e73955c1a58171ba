"""CPU per request of flask-cart and its peers: instructions counted by callgrind.

Each app of bench/apps.py first holds a 10-line cart, then runs N requests of one scenario
under ``valgrind --tool=callgrind``; the cost of one request is
(count at 120 requests - count at 20) / 100, so start-up and imports cancel out.
Instruction counts do not drift with machine noise (store latency is not in them).

    .venv/bin/python bench/icount.py                          # every app, every scenario
    .venv/bin/python bench/icount.py 'flask-cart(redis)' flask-session(redis)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import callgrind  # noqa: E402
from apps import NAMES, drop_tables, make_app  # noqa: E402

SCENARIOS = ("page", "view", "add")
LOW, HIGH = 20, 120
# The goals, as (app, scenario, peer, scenario of the peer, at most this ratio).
GOALS = [
    ("flask-cart(redis)", "add", "flask-session(redis)", "add", 1.0),
    ("flask-cart(sqlite)", "add", "flask-session(redis)", "add", 1.5),
    ("flask-cart(postgres)", "add", "flask-session(redis)", "add", 1.5),
    ("flask-cart(mariadb)", "add", "flask-session(redis)", "add", 1.5),
    ("flask-cart(redis)", "view", "flask-shoppingcart", "view", 1.0),
    ("flask-cart(sqlite)", "view", "flask-shoppingcart", "view", 1.0),
    ("flask-cart(redis)", "page", "bare", "page", 1.05),
]


def run_one(name: str, scenario: str, requests: int) -> None:
    """Inside valgrind: a 10-line cart, then `requests` requests of `scenario`."""
    app = make_app(name)
    client = app.test_client()
    try:
        if name != "bare":  # bare+session's POST gives it a login-sized session cookie
            for i in range(10):
                client.post("/cart/items", json={"product_id": f"p{i}", "quantity": 1})
        for i in range(requests):
            if scenario == "page":
                client.get("/")
            elif scenario == "view":
                client.get("/cart")
            else:
                client.post("/cart/items", json={"product_id": f"p{i % 10}", "quantity": 1})
    finally:
        if name.startswith("flask-cart"):
            drop_tables(app)


def instructions(name: str, scenario: str, requests: int) -> int:
    return callgrind.instructions(__file__, "--inner", name, scenario, str(requests))


def per_request(name: str, scenario: str) -> float:
    return (instructions(name, scenario, HIGH) - instructions(name, scenario, LOW)) / (HIGH - LOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apps", nargs="*", default=list(NAMES))
    parser.add_argument("--inner", nargs=3, metavar=("APP", "SCENARIO", "N"))
    args = parser.parse_args()
    if args.inner:
        name, scenario, requests = args.inner
        run_one(name, scenario, int(requests))
        return
    wanted = list(dict.fromkeys([*args.apps, *(g[2] for g in GOALS if g[0] in args.apps)]))
    table: dict[tuple[str, str], float] = {}
    print(f"{'app':24}" + "".join(f"{s + ' kinstr':>14}" for s in SCENARIOS), flush=True)
    for name in wanted:
        cells = []
        for scenario in SCENARIOS:
            if name.startswith("bare") and scenario != "page":
                cells.append(f"{'-':>14}")
                continue
            try:
                table[name, scenario] = per_request(name, scenario)
                cells.append(f"{table[name, scenario] / 1000:14,.0f}")
            except RuntimeError as exc:
                cells.append(f"{'error':>14}")
                print(f"  {name} {scenario}: {str(exc)[-300:]}", file=sys.stderr)
        print(f"{name:24}" + "".join(cells), flush=True)
    print("\ngoals (instructions per request, ratio to the peer)")
    for app, scenario, peer, peer_scenario, limit in GOALS:
        if (app, scenario) in table and (peer, peer_scenario) in table:
            ratio = table[app, scenario] / table[peer, peer_scenario]
            verdict = "met" if ratio <= limit else "not met"
            print(
                f"  {app} {scenario} / {peer} {peer_scenario}: {ratio:.2f}x"
                f" (goal <= {limit}x, {verdict})"
            )


if __name__ == "__main__":
    main()
