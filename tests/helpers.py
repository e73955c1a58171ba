"""Test helpers that look at a store's raw content (to prove a refused change wrote nothing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from flask_cart.stores.base import CartKey, CartStore
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore


def raw_dump(store: CartStore, key: CartKey) -> Any:
    """Everything the store holds for `key`, byte for byte."""
    if isinstance(store, RedisStore):
        name = store.key(key)
        return sorted(store.client.hgetall(name).items()), store.client.pttl(name) > 0
    assert isinstance(store, SQLStore)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.table).where(
                store.table.c.identifier == key.identifier, store.table.c.instance == key.instance
            )
        ).all()
    return [tuple(row) for row in rows]


def expire_now(store: CartStore, key: CartKey) -> None:
    """Make the cart at `key` expire immediately, as if its lifetime had run out."""
    if isinstance(store, RedisStore):
        store.client.delete(store.key(key))
        return
    assert isinstance(store, SQLStore)
    t = store.table
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.identifier == key.identifier, t.c.instance == key.instance)
            .values(expires_at=store.clock() - timedelta(seconds=1))
        )
