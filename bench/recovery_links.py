"""Microseconds per recovery link: `flask cart abandoned` makes one per report.

    .venv/bin/python bench/recovery_links.py [N]

Builds N links (default 20,000) for random guest ids outside a request (SERVER_NAME set):
one ``carts.recovery_url`` call per link, then one maker from
``flask_cart.recovery.recovery_links`` for all of them (as the CLI does), and prints the
mean time per link beside ``url_for`` alone. Wall time on a
shared machine: compare two runs of this script, not figures from different days.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid

from flask import Flask, url_for

from flask_cart import CartManager
from flask_cart.recovery import recovery_links


def main(n: int) -> None:
    app = Flask(__name__, instance_path=tempfile.mkdtemp(prefix="flask-cart-bench-"))
    app.config.update(SECRET_KEY="bench", SERVER_NAME="shop.example", CART_STORE="redis")
    carts = CartManager(app)
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with app.app_context():
        carts.recovery_url(ids[0])
        started = time.perf_counter()
        for identifier in ids:
            carts.recovery_url(identifier)
        link = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        make = recovery_links(carts)
        for identifier in ids:
            make(identifier, "cart")
        batch = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        for identifier in ids:
            url_for("flask_cart.recover_cart", token=identifier, _external=True)
        bare = (time.perf_counter() - started) / n * 1e6
    print(
        f"recovery_url: {link:.1f} us per link; recovery_links: {batch:.1f} us; "
        f"url_for alone: {bare:.1f} us ({n} links)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
