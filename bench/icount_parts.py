"""Where an add's instructions go: each part of flask-cart's add on Redis, counted alone.

The add of bench/icount.py (a 10-line cart, ``POST /cart/items`` through the Flask test
client) is split into the parts below, each repeated under callgrind on the same cart and
counted as (count at 120 repetitions - count at 20) / 100, as bench/icount.py counts a
request. The whole request and a bare page (Flask and the test client alone) frame them;
what the parts leave of the request is the request's plumbing (cart context, identity,
routing, validation, the response's headers).

    .venv/bin/python bench/icount_parts.py            # every part
    .venv/bin/python bench/icount_parts.py decode reprice
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import callgrind  # noqa: E402
from apps import PRODUCTS, clean_up, make_app  # noqa: E402
from flask import request  # noqa: E402

from flask_cart.catalog import Catalog  # noqa: E402
from flask_cart.identity import set_guest_cookie  # noqa: E402
from flask_cart.lines import Limits, Line, Owner  # noqa: E402
from flask_cart.stores.base import CartKey  # noqa: E402
from flask_cart.stores.redis import decode_hash  # noqa: E402
from flask_cart.sync import Entry, dump_entry, write_entry  # noqa: E402

LOW, HIGH = 20, 120
PARTS = {
    "request": "the whole add request, as bench/icount.py counts it",
    "page": "a bare Flask page through the test client (the floor under any request)",
    "store": "RedisStore.add: the EVALSHA round trip, its reply read and decoded",
    "decode": "decode_hash of the store's packed 10-line reply alone",
    "reprice": "Catalog.reprice of the 10 lines (a new catalog: one loader call per line)",
    "json": "the cart's JSON body: RequestCart.as_json and its serialisation",
    "cookies": "the two signed cookies: guest id and sync snapshot, made and set",
}


def setup() -> tuple[dict[str, Callable[[], object]], Callable[[], None]]:
    """The parts, ready to repeat, and what removes the bench's keys afterwards."""
    app = make_app("flask-cart(redis)", counting=True)
    bare = make_app("bare").test_client()
    client = app.test_client()
    for i in range(10):
        client.post("/cart/items", json={"product_id": f"p{i}", "quantity": 1})
    carts = app.extensions["cart"]
    store = carts.get_store(app)
    key = CartKey("00000000-0000-4000-8000-000000000001")
    owner, limits = Owner(None, ttl=86400), Limits()
    for i in range(10):
        store.add(
            key, Line(f"p{i}", 1, "9.99", {"name": f"Product {i}"}), owner=owner, limits=limits
        )
    packed = store.client.hgetall(store.key(key))
    packed_text = "\0".join(
        f"{k.decode()}\0{v.decode()}" for k, v in packed.items() if k != b"_o"
    ).encode()
    state = decode_hash(packed_text)
    line = Line("p1", 1, "9.99", {})
    counter = iter(range(10**9))
    ctx = app.test_request_context("/cart")
    ctx.push()
    cart = carts.cart("cart")
    cart._state = Catalog(PRODUCTS.get).reprice(state)  # the cart as a change leaves it
    response = app.response_class("")
    settings = carts.settings(app)

    def cookies() -> None:
        set_guest_cookie(app, response, request, settings, key.identifier)
        value = dump_entry(app, "cart", Entry(key.identifier, time.time(), state))
        write_entry(response, request, settings, "cart", value)
        del response.headers["Set-Cookie"]

    parts: dict[str, Callable[[], object]] = {
        "request": lambda: client.post(
            "/cart/items", json={"product_id": f"p{next(counter) % 10}", "quantity": 1}
        ),
        "page": lambda: bare.get("/"),
        "store": lambda: store.add(key, line, owner=owner, limits=limits),
        "decode": lambda: decode_hash(packed_text),
        "reprice": lambda: Catalog(PRODUCTS.get).reprice(state),
        "json": lambda: app.json.dumps(cart.as_json()),
        "cookies": cookies,
    }

    def done() -> None:
        ctx.pop()
        clean_up(app)

    return parts, done


def run_inner(part: str, repeats: int) -> None:
    parts, done = setup()
    try:
        work = parts[part]
        for _ in range(repeats):
            work()
    finally:
        done()


def per_repeat(part: str) -> float:
    high = callgrind.instructions(__file__, "--inner", part, str(HIGH))
    low = callgrind.instructions(__file__, "--inner", part, str(LOW))
    return (high - low) / (HIGH - LOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=list(PARTS))
    parser.add_argument("--inner", nargs=2, metavar=("PART", "N"))
    args = parser.parse_args()
    if args.inner:
        run_inner(args.inner[0], int(args.inner[1]))
        return
    counts = {}
    print(f"{'part':10}{'kinstr':>10}  what", flush=True)
    for part in args.parts:
        counts[part] = per_repeat(part)
        print(f"{part:10}{counts[part] / 1000:10,.0f}  {PARTS[part]}", flush=True)
    if {"request", "page"} <= counts.keys():
        inner = [p for p in ("store", "reprice", "json", "cookies") if p in counts]
        rest = counts["request"] - counts["page"] - sum(counts[p] for p in inner)
        print(f"{'rest':10}{rest / 1000:10,.0f}  the request minus the page and {', '.join(inner)}")
    print(json.dumps({k: round(v) for k, v in counts.items()}))


if __name__ == "__main__":
    main()
