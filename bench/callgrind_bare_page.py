"""Instructions per request of a page that never touches the cart, with and without flask-cart.

Counts instructions with callgrind (stable where wall time is not) for N test-client requests
to a bare route, minus the same script with 0 requests (start-up), divided by N:

    .venv/bin/python bench/callgrind_bare_page.py            # runs valgrind itself
    .venv/bin/python bench/callgrind_bare_page.py --requests 2000

Variants, each the same app otherwise:

- ``plain``: Flask + Flask-Login, no flask-cart;
- ``cart``: the same with ``CartManager`` (a browser without cart cookies);
- ``cart+cookies``: the same, the browser sending a guest cookie and a 10-line sync snapshot
  (a shopper with a cart browsing pages that do not show it);
- ``plain+cookies``: ``plain`` receiving those same two cookies (the test client's own work
  on a bigger cookie jar is then the same on both sides).

The target is ``cart`` within 5 % of ``plain``, and ``cart+cookies`` of ``plain+cookies``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import callgrind  # noqa: E402

VARIANTS = ("plain", "cart", "plain+cookies", "cart+cookies")


def build(variant: str, instance: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT))
    from flask import Flask, session
    from flask_login import LoginManager

    app = Flask(__name__, instance_path=instance)
    app.config.update(SECRET_KEY="bench-secret")
    LoginManager(app).user_loader(lambda user_id: None)

    @app.get("/")
    def bare() -> str:
        session.get("seen")
        return "a page that never looks at the cart"

    client = app.test_client()
    if variant == "plain":
        return app, client
    if variant == "plain+cookies":
        _, shopper = build("cart+cookies", instance)  # another app makes real cookies
        for name in ("guest_cart_id", "cart_sync"):
            client.set_cookie(name, shopper.get_cookie(name).value)
        return app, client
    from flask_cart import CartManager
    from flask_cart.stores.sql import SQLStore

    # A long window: the snapshot cookie must outlive the run under valgrind (Max-Age).
    app.config["CART_SYNC_SECONDS"] = 3600
    carts = CartManager(app)
    products = {f"sku-{n}": {"unit_cost": Decimal("9.99"), "name": f"Mug {n}"} for n in range(10)}
    carts.product_loader(products.get)
    if variant == "cart+cookies":
        for n in range(10):  # a real cart: guest cookie plus snapshot cookie
            response = client.post("/cart/items", json={"product_id": f"sku-{n}", "quantity": 2})
            assert response.status_code == 200, response.data
        assert client.get_cookie("guest_cart_id") and client.get_cookie("cart_sync")
        with app.app_context():
            assert isinstance(carts.get_store(), SQLStore)
    return app, client


def inner(variant: str, requests: int) -> None:
    with tempfile.TemporaryDirectory() as instance:
        _, client = build(variant, instance)
        for _ in range(20):  # warm caches (imports, url map, jinja) outside the difference
            client.get("/")
        for _ in range(requests):
            response = client.get("/")
        if requests:
            assert response.status_code == 200 and not response.headers.getlist("Set-Cookie")
            sent = response.request.headers.get("Cookie", "")
            assert ("cart_sync=" in sent) == variant.endswith("+cookies"), sent[:80]


def instructions(variant: str, requests: int) -> int:
    return callgrind.instructions(__file__, "--inner", variant, "--requests", str(requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--inner", choices=VARIANTS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.requests)
        return
    per_request = {}
    for variant in VARIANTS:
        base = instructions(variant, 0)
        total = instructions(variant, args.requests)
        per_request[variant] = (total - base) / args.requests
    print(f"instructions per request of a bare page ({args.requests} requests, callgrind)")
    for variant, value in per_request.items():
        peer = per_request["plain+cookies" if variant.endswith("+cookies") else "plain"]
        print(f"  {variant:14} {value:12,.0f}  {value / peer:6.3f} x its plain peer")


if __name__ == "__main__":
    main()
