"""Store names: the one table from a ``CART_STORE`` name to its class.

A name not in the table is a dotted path (``"myshop.stores:MyStore"`` or
``"myshop.stores.MyStore"``), resolved with werkzeug's ``import_string`` as Flask-Caching
resolves its backends. Classes are imported on first use, so a shop on Redis never imports
SQLAlchemy and the other way round.
"""

from __future__ import annotations

from typing import Any

from werkzeug.utils import import_string

from .base import CartStore

STORES: dict[str, str] = {
    "sqlalchemy": "flask_cart.stores.sql:SQLStore",
    "sql": "flask_cart.stores.sql:SQLStore",
    "redis": "flask_cart.stores.redis:RedisStore",
}


def store_class(name: str) -> type[CartStore]:
    """The store class a short name ("redis", "sqlalchemy") or a dotted path names."""
    cls: Any = import_string(STORES.get(name, name))
    if not (isinstance(cls, type) and issubclass(cls, CartStore)):
        raise TypeError(f"{name!r} is not a CartStore subclass")
    return cls


def as_store(obj: object) -> CartStore:
    """A CartStore as is; a redis client wrapped in a RedisStore; an Engine in a SQLStore."""
    if isinstance(obj, CartStore):
        return obj
    module = type(obj).__module__
    if module.startswith("redis"):
        return store_class("redis")(obj)  # type: ignore[call-arg]
    if module.startswith("sqlalchemy"):
        return store_class("sql")(obj)  # type: ignore[call-arg]
    raise TypeError(f"expected a CartStore or a redis client, got {type(obj).__name__}")


__all__ = ["STORES", "as_store", "store_class"]
