"""The ecart README example runs with only its import line changed; outages are bounded."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
import redis
import sqlalchemy as sa

from flask_cart.errors import StoreUnavailable
from flask_cart.stores.base import MAX_REMEMBERED_OPS
from flask_cart.stores.redis import RedisStore
from flask_cart.stores.sql import SQLStore
from tests.conftest import REDIS_URL, delete_prefix


@pytest.mark.redis
def test_the_ecart_readme_example(redis_client):
    user_id = f"ecart-example-{uuid.uuid4().hex}"
    product_id, unit_cost, quantity = "book-42", Decimal("12.50"), 2
    try:
        # --- the README example, with `from ecart.ecart import Cart` changed ---
        from flask_cart import Cart

        redis_connection = redis.Redis.from_url(REDIS_URL)
        cart_obj = Cart(user_id, redis_connection)  # ttl is optional default is 604800
        cart_obj.add(product_id, unit_cost, quantity)
        # --- end of the example ---
        assert cart_obj.get() == {product_id: {"unit_cost": unit_cost, "quantity": quantity}}
        assert cart_obj.contains(product_id)
        assert cart_obj.total_cost() == Decimal("25.00")
        assert (cart_obj.count(), cart_obj.quantity()) == (1, 2)
        assert 604790 <= cart_obj.get_ttl() <= 604800
        cart_obj.set_ttl(60)
        assert cart_obj.get_ttl() <= 60
        assert cart_obj.copy(f"{user_id}-copy").get() == cart_obj.get()
        Cart(f"{user_id}-copy", redis_connection).destroy()
        cart_obj.destroy()
        assert cart_obj.get() == {}
    finally:
        delete_prefix(redis_client, f"flask_cart:{{{user_id}")


@pytest.mark.redis
def test_a_resent_change_is_applied_once(make_store):
    store = make_store("redis")
    from flask_cart import Cart

    cart = Cart("u1", store)
    cart.add("a", 1)
    head = ["same-op-id", int(time.time() * 1000), 600, "", MAX_REMEMBERED_OPS]
    args = [*head, "a", 1, "1", "{}", 999, 100]
    for _ in range(3):  # e.g. a client library retrying after a lost answer
        store._scripts["add"](keys=[store.key(cart.key)], args=args)
    assert cart.get_product("a")["quantity"] == 2


@pytest.mark.parametrize(
    "store_factory",
    [
        pytest.param(lambda: RedisStore.from_url("redis://127.0.0.1:1/0", timeout=0.5), id="redis"),
        pytest.param(
            lambda: SQLStore(
                sa.create_engine(
                    "postgresql+psycopg://postgres@127.0.0.1:1/test",
                    connect_args={"connect_timeout": 1},
                )
            ),
            id="postgres",
        ),
    ],
)
def test_an_unreachable_store_fails_fast_with_store_unavailable(store_factory):
    from flask_cart import Cart

    cart = Cart("u1", store_factory())
    started = time.monotonic()
    for call in (cart.get, lambda: cart.add("a", 1), cart.checkout, cart.get_ttl):
        with pytest.raises(StoreUnavailable):
            call()
    assert time.monotonic() - started < 10
