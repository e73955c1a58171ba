"""A shop rule and a cart route on the same URL: the first request logs one warning naming
both (whichever was registered first), and nothing after that."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from flask_cart import CartManager

SHOP_PAGE = "the shop's cart page"


def shop(tmp_path: Any, *, before: bool, **config: Any) -> Flask:
    """A shop with its own ``GET /cart`` page, added `before` or after flask-cart's routes."""
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="test", CART_STORE_TIMEOUT=30, **config)

    def cart_page() -> str:
        return SHOP_PAGE

    if before:
        app.add_url_rule("/cart", "cart_page", cart_page)
    CartManager(app)
    if not before:
        app.add_url_rule("/cart", "cart_page", cart_page)
    return app


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_cart" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("before", [True, False], ids=["shop-rule-first", "cart-routes-first"])
def test_a_shop_rule_on_a_cart_route_is_logged_once_naming_both(tmp_path, caplog, before):
    app = shop(tmp_path, before=before)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_cart"):
        answer = client.get("/elsewhere")  # any first request, even one that matches nothing
        client.get("/cart")
        client.get("/cart")
    assert answer.status_code == 404
    (message,) = warnings_of(caplog)
    assert '"/cart" (endpoint "cart_page")' in message
    assert '"/cart" (endpoint "flask_cart.view_cart")' in message
    assert "GET /cart" in message
    served = "cart_page" if before else "flask_cart.view_cart"
    assert f'only "{served}" is served' in message
    assert 'CART_URL_PREFIX = "/api/cart"' in message
    answered_by_shop = client.get("/cart").get_data(as_text=True) == SHOP_PAGE
    assert answered_by_shop is before


def test_a_catch_all_shop_rule_under_the_prefix_is_logged(tmp_path, caplog):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="test", CART_STORE_TIMEOUT=30)
    CartManager(app)
    app.add_url_rule("/cart/<path:page>", "cart_pages", lambda page: page)
    with caplog.at_level(logging.WARNING, logger="flask_cart"):
        app.test_client().get("/")
    found = warnings_of(caplog)
    assert found and all('endpoint "cart_pages"' in message for message in found)
    assert any("flask_cart.add_link" in message for message in found)


def test_no_warning_with_a_prefix_of_their_own_and_nothing_per_request(tmp_path, caplog):
    app = shop(tmp_path, before=True, CART_URL_PREFIX="/api/cart")
    hooks = len(app.before_request_funcs[None])
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_cart"):
        assert client.get("/cart").get_data(as_text=True) == SHOP_PAGE
        assert client.get("/api/cart").status_code == 200
    assert warnings_of(caplog) == []
    assert len(app.before_request_funcs[None]) == hooks - 1  # the check took itself off
