"""Signed link tokens (flask_cart.tokens): purpose-bound, tamper-evident, expiring."""

from __future__ import annotations

import time

import pytest
from flask import Flask

from flask_cart import InvalidLink, LinkExpired
from flask_cart.tokens import make_token, read_token


def app_with(secret: str, fallbacks: list[str] | None = None) -> Flask:
    app = Flask(__name__)
    app.secret_key = secret
    if fallbacks:
        app.config["SECRET_KEY_FALLBACKS"] = fallbacks
    return app


def test_a_token_carries_its_data() -> None:
    app = app_with("s1")
    token = make_token(app, "link", {"sku-1": 2}, max_age=60)
    assert read_token(app, "link", token) == {"sku-1": 2}
    assert read_token(app, "link", make_token(app, "link", ["a"])) == ["a"]


@pytest.mark.parametrize("change", ["flip", "cut", "append", "empty", "huge", "garbage"])
def test_a_tampered_token_is_invalid(change: str) -> None:
    app = app_with("s1")
    token = make_token(app, "link", {"sku-1": 2})
    bad = {
        "flip": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "cut": token[:-3],
        "append": token + "x",
        "empty": "",
        "huge": "a" * 5000,
        "garbage": "not.a.token",
    }[change]
    with pytest.raises(InvalidLink) as err:
        read_token(app, "link", bad)
    assert err.value.status == 400


def test_a_token_is_bound_to_its_purpose_and_key() -> None:
    app = app_with("s1")
    token = make_token(app, "recover", ["guest", "cart"])
    with pytest.raises(InvalidLink):
        read_token(app, "link", token)
    with pytest.raises(InvalidLink):
        read_token(app_with("other"), "recover", token)
    assert read_token(app_with("new", fallbacks=["s1"]), "recover", token) == ["guest", "cart"]


def test_an_expired_token_is_gone() -> None:
    app = app_with("s1")
    token = make_token(app, "link", {"a": 1}, max_age=1)
    time.sleep(1.1)
    with pytest.raises(LinkExpired) as err:
        read_token(app, "link", token)
    assert err.value.status == 410


def test_max_age_must_be_positive() -> None:
    with pytest.raises(ValueError):
        make_token(app_with("s1"), "link", {}, max_age=0)
