"""Recovery links on every store: ``carts.recovery_url`` and ``GET /cart/recover/<token>``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, has_request_context

from flask_cart import CartManager, InvalidInput, InvalidInstance
from flask_cart.stores.base import CartStore
from flask_cart.tokens import read_token
from tests.flask.shop import build_app

GUEST = "0b6f1c1e-8a4e-4c43-9a8e-2f0b5d5e7a11"
WEEK = 7 * 86400


def test_recovery_url_outside_a_request_uses_server_name(
    cart_store: CartStore, products: dict[str, Any]
) -> None:
    app, carts = build_app(
        cart_store, products, SERVER_NAME="shop.example", PREFERRED_URL_SCHEME="https"
    )
    with app.app_context():  # as in the CLI: no request
        assert not has_request_context()
        url = carts.recovery_url(GUEST)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "shop.example")
    assert parts.path.startswith("/cart/recover/")


def test_recovery_url_without_server_name_says_so(
    cart_store: CartStore, products: dict[str, Any]
) -> None:
    app, carts = build_app(cart_store, products)
    with app.app_context(), pytest.raises(RuntimeError, match="SERVER_NAME"):
        carts.recovery_url(GUEST)


def test_recovery_url_inside_a_request_uses_its_host(app: Flask, carts: CartManager) -> None:
    with app.test_request_context("/", base_url="http://shop.test:8080"):
        url = carts.recovery_url("customer:42", instance="wishlist")
    assert url.startswith("http://shop.test:8080/cart/recover/")


def test_recovery_url_says_whose_cart(app: Flask, carts: CartManager) -> None:
    with app.test_request_context("/"):
        guest = carts.recovery_url(GUEST).rsplit("/", 1)[1]
        customer = carts.recovery_url("customer:a:b", instance="wishlist").rsplit("/", 1)[1]
        assert read_token(app, "recover", guest) == {"guest": GUEST, "instance": "cart"}
        assert read_token(app, "recover", customer) == {"customer": "a:b", "instance": "wishlist"}


@pytest.mark.parametrize("identifier", ["nobody", "customer:", GUEST.upper(), "", 42])
def test_recovery_url_refuses_what_is_no_cart_identifier(
    app: Flask, carts: CartManager, identifier: Any
) -> None:
    with app.test_request_context("/"), pytest.raises(InvalidInput):
        carts.recovery_url(identifier)


def test_recovery_url_refuses_an_unknown_instance(app: Flask, carts: CartManager) -> None:
    with app.test_request_context("/"), pytest.raises(InvalidInstance):
        carts.recovery_url(GUEST, instance="basket")
