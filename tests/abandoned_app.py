"""The app the two-process test of `flask cart abandoned` runs (configured by T_* env vars)."""

from __future__ import annotations

import os

from flask import Flask

from flask_cart import CartManager

app = Flask(__name__)
app.config.update(SERVER_NAME="shop.test", SECRET_KEY="abandoned-tests")
if os.environ["T_STORE"] == "redis":
    app.config.update(
        CART_STORE="redis",
        CART_REDIS_URL=os.environ.get("CART_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        CART_KEY_PREFIX=os.environ["T_PREFIX"],
    )
else:
    app.config.update(
        CART_STORE="sqlalchemy",
        CART_DATABASE_URI=os.environ["T_URL"],
        CART_TABLE_NAME=os.environ["T_TABLE"],
    )
CartManager(app)
