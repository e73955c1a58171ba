"""The app the two-process test of `flask cart abandoned --send` runs: tests/abandoned_app.py
with Flask-Mail on the test's SMTP server (T_MAIL_PORT)."""

from __future__ import annotations

import os

from flask_mail import Mail

from tests.abandoned_app import app

app.config.update(
    CART_STORE_TIMEOUT=30,
    MAIL_SERVER="127.0.0.1",
    MAIL_PORT=int(os.environ["T_MAIL_PORT"]),
    MAIL_DEFAULT_SENDER="shop@shop.test",
)
Mail(app)
