"""flask_cart.signing makes and accepts exactly itsdangerous' Signer format."""

from __future__ import annotations

import pytest
from flask import Flask
from itsdangerous import Signer

from flask_cart.signing import sign, unsign

SALT = "flask-cart.guest-cart-id"


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="new-key", SECRET_KEY_FALLBACKS=["old-key"])
    return app


def test_the_same_signatures_as_itsdangerous(app):
    ours = sign(app, SALT, "some-value")
    theirs = Signer([b"old-key", b"new-key"], salt=SALT).sign("some-value").decode()
    assert ours == theirs
    assert unsign(app, SALT, theirs) == "some-value"


def test_fallback_keys_verify_but_do_not_sign(app):
    old = Signer(b"old-key", salt=SALT).sign("v").decode()
    assert unsign(app, SALT, old) == "v"
    assert sign(app, SALT, "v") != old


@pytest.mark.parametrize(
    "signed",
    ["v", "v.", ".sig", "v.wrong", "v.\u00e9", "", "v.abc.def"],
)
def test_bad_signatures_are_refused(app, signed):
    assert unsign(app, SALT, signed) is None


def test_another_salt_does_not_verify(app):
    assert unsign(app, "other", sign(app, SALT, "v")) is None


@pytest.mark.parametrize(
    "key", [b"new-key", bytearray(b"new-key"), memoryview(bytearray(b"new-key"))]
)
def test_a_secret_key_of_any_bytes_type_signs_and_rotates_in_place(app, key):
    """Bytes-like keys work as Flask's own signing takes them; a mutable one changed in
    place (a rotation) signs with its new bytes at once."""
    app.config["SECRET_KEY"] = key
    assert sign(app, SALT, "v") == Signer(b"new-key", salt=SALT).sign("v").decode()
    if not isinstance(key, bytes):
        key[:3] = b"NEW"
        assert sign(app, SALT, "v") == Signer(b"NEW-key", salt=SALT).sign("v").decode()


def test_fallbacks_changed_in_place_are_read_again(app):
    old = Signer(b"older-key", salt=SALT).sign("v").decode()
    assert unsign(app, SALT, old) is None
    app.config["SECRET_KEY_FALLBACKS"].append("older-key")
    assert unsign(app, SALT, old) == "v"


def test_two_apps_and_a_replaced_key_each_sign_with_their_own_keys(app):
    """The last keys read are reused only for the very same config objects."""
    other = Flask(__name__)
    other.config.update(SECRET_KEY="other-key", SECRET_KEY_FALLBACKS=("older",))
    for _ in range(2):
        assert sign(app, SALT, "v") == Signer(b"new-key", salt=SALT).sign("v").decode()
        assert sign(other, SALT, "v") == Signer(b"other-key", salt=SALT).sign("v").decode()
    assert unsign(other, SALT, Signer(b"older", salt=SALT).sign("v").decode()) == "v"
    other.config["SECRET_KEY"] = "rotated-key"
    assert sign(other, SALT, "v") == Signer(b"rotated-key", salt=SALT).sign("v").decode()
    other.config["SECRET_KEY_FALLBACKS"] = ()
    assert unsign(other, SALT, Signer(b"older", salt=SALT).sign("v").decode()) is None
