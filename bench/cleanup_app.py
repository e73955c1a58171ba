"""The app `flask cart cleanup` runs against in bench/cleanup_scale.py, configured by env vars.

    BENCH_STORE=postgres BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
    BENCH_TABLE=fc_bench_cleanup flask --app bench/cleanup_app.py cart cleanup

    BENCH_STORE=redis BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \
    BENCH_PREFIX=fc_bench_cleanup: flask --app bench/cleanup_app.py cart cleanup

It hands the `cart` command group a store on the bench's own table or key prefix, so
the benchmark measures the cleanup itself and touches nothing else.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask

from flask_cart.cli import cart_cli
from flask_cart.stores.base import CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore


class _BenchCarts:
    """Stands in for the CartManager state: `get_store()` is all the command needs."""

    def __init__(self, store: CartStore) -> None:
        self.store = store

    def get_store(self) -> CartStore:
        return self.store


def make_store() -> CartStore:
    kind = os.environ.get("BENCH_STORE", "postgres")
    if kind == "redis":
        url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        return RedisStore.from_url(url, prefix=os.environ["BENCH_PREFIX"], timeout=30)
    url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return SQLStore(sa.create_engine(url), table_name=os.environ["BENCH_TABLE"])


def create_app() -> Flask:
    app = Flask(__name__)
    app.extensions["cart"] = _BenchCarts(make_store())
    app.cli.add_command(cart_cli)
    return app


app = create_app()
