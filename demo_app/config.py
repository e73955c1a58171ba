"""Configuration of the demo shop, from defaults, environment variables and `create_app(config)`.

Environment switches:

- ``CART_STORE=redis`` keeps carts in Redis (``CART_REDIS_URL``, default
  ``redis://localhost:6379/0``) instead of the shop's SQL database;
- ``DATABASE_URL`` points the shop (and its carts) at another database, e.g.
  ``postgresql://postgres@127.0.0.1:5432/shop``; SQLite in ``instance/`` by default;
- ``CART_SYNC_SECONDS`` sets how long a browser may serve its cached cart;
- ``SECRET_KEY`` replaces the key generated into ``instance/secret_key`` on first start;
- ``DEMO_QA=1`` opens the QA page of abandoned carts (``/status/abandoned``: addresses,
  live recovery links, the outbox of reminders); off by default (404);
- ``DEMO_ABANDONED_STAGES`` sets the stages of idleness (``30s`` or ``1m,1h``; default
  ``1h,24h,72h``), ``DEMO_SERVER_NAME`` the host the reminders' links name
  (``127.0.0.1:5000``; ``python -m demo_app`` uses the address it serves on).
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
from pathlib import Path
from typing import Any

#: A stage of idleness as flask cart abandoned takes it: a whole number > 0 and s, m, h or d.
STAGE = re.compile(r"[1-9][0-9]{0,8}[smhd]", re.ASCII)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def database_url(url: str) -> str:
    """SQLAlchemy's spelling of a database URL (``postgres://`` and a driver psycopg can serve)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if (
        url.startswith("postgresql://")
        and importlib.util.find_spec("psycopg2") is None
        and importlib.util.find_spec("psycopg") is not None
    ):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def secret_key(instance_path: str) -> str:
    """A secret kept in the instance folder, so cookies outlive a restart of the demo."""
    path = Path(instance_path) / "secret_key"
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def from_environment(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if environ.get("SECRET_KEY"):
        config["SECRET_KEY"] = environ["SECRET_KEY"]
    if environ.get("DATABASE_URL"):
        config["SQLALCHEMY_DATABASE_URI"] = database_url(environ["DATABASE_URL"])
    if environ.get("CART_STORE"):
        config["CART_STORE"] = environ["CART_STORE"]
    if environ.get("CART_REDIS_URL"):
        config["CART_REDIS_URL"] = environ["CART_REDIS_URL"]
    if environ.get("CART_SYNC_SECONDS"):
        try:
            config["CART_SYNC_SECONDS"] = int(environ["CART_SYNC_SECONDS"])
        except ValueError:
            raise SystemExit(
                f"CART_SYNC_SECONDS must be a whole number of seconds, "
                f"not {environ['CART_SYNC_SECONDS']!r}"
            ) from None
    if environ.get("DEMO_QA"):
        config["DEMO_QA"] = environ["DEMO_QA"].strip().lower() in ("1", "true", "yes", "on")
    if environ.get("DEMO_ABANDONED_STAGES"):
        stages = environ["DEMO_ABANDONED_STAGES"].replace(",", " ").split()
        seconds = [int(s[:-1]) * _SECONDS[s[-1]] for s in stages if STAGE.fullmatch(s)]
        if len(seconds) != len(stages) or len(set(seconds)) != len(seconds):
            raise SystemExit(
                f"DEMO_ABANDONED_STAGES: {environ['DEMO_ABANDONED_STAGES']!r} is not a list of "
                "different durations (e.g. 30s or 1m,1h)"
            )
        config["CART_ABANDONED_STAGES"] = stages
    if environ.get("DEMO_SERVER_NAME"):
        config["SERVER_NAME"] = environ["DEMO_SERVER_NAME"].strip()
    return config
