"""Configuration of the demo shop, from defaults, environment variables and `create_app(config)`.

Environment switches:

- ``CART_STORE=redis`` keeps carts in Redis (``CART_REDIS_URL``, default
  ``redis://localhost:6379/0``) instead of the shop's SQL database;
- ``DATABASE_URL`` points the shop (and its carts) at another database, e.g.
  ``postgresql://postgres@127.0.0.1:5432/shop``; SQLite in ``instance/`` by default;
- ``CART_SYNC_SECONDS`` sets how long a browser may serve its cached cart;
- ``SECRET_KEY`` replaces the key generated into ``instance/secret_key`` on first start.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from pathlib import Path
from typing import Any


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
    return config
