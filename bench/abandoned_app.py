"""The app `flask cart abandoned` runs against in bench/abandoned_scale.py, configured by env vars.

    BENCH_STORE=postgres BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
    BENCH_TABLE=fc_bench_abandoned flask --app bench/abandoned_app.py cart abandoned --json

    BENCH_STORE=redis BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \
    BENCH_PREFIX=fc_bench_abandoned: flask --app bench/abandoned_app.py cart abandoned --json

A real CartManager (recovery links need its settings and the app's SECRET_KEY and
SERVER_NAME) on the bench's own table or key prefix; no receiver is connected.
"""

from __future__ import annotations

import os

from flask import Flask

from flask_cart import CartManager


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="bench", SERVER_NAME="shop.example", PREFERRED_URL_SCHEME="https")
    if os.environ.get("BENCH_STORE", "postgres") == "redis":
        app.config.update(
            CART_STORE="redis",
            CART_REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            CART_KEY_PREFIX=os.environ["BENCH_PREFIX"],
            CART_STORE_TIMEOUT=30,
        )
    else:
        app.config.update(
            CART_STORE="sqlalchemy",
            CART_DATABASE_URI=os.environ.get(
                "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
            ),
            CART_TABLE_NAME=os.environ["BENCH_TABLE"],
        )
    CartManager(app)
    return app


app = create_app()
