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


@pytest.mark.parametrize(
    "kind", [type("FallbackList", (list,), {}), __import__("collections").deque]
)
def test_fallbacks_of_any_mutable_kind_changed_in_place_are_read_again(app, kind):
    """A fallback removed in place (a leaked key retired) stops verifying at once."""
    app.config["SECRET_KEY_FALLBACKS"] = kind(["leaked-key"])
    forged = Signer(b"leaked-key", salt=SALT).sign("v").decode()
    assert unsign(app, SALT, forged) == "v"
    app.config["SECRET_KEY_FALLBACKS"].remove("leaked-key")
    assert unsign(app, SALT, forged) is None


def test_a_missing_secret_key_says_so_before_and_after_other_apps_signed(app):
    """Also as the first signing of a process (a fresh interpreter)."""
    import subprocess
    import sys

    script = (
        "from flask import Flask\n"
        "from flask_cart.signing import sign, unsign\n"
        "app = Flask('a')\n"
        "for call in (lambda: unsign(app, 's', 'v.sig'), lambda: sign(app, 's', 'v')):\n"
        "    try:\n"
        "        call()\n"
        "    except RuntimeError as exc:\n"
        "        print('RuntimeError', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.count("set SECRET_KEY") == 2, out.stdout + out.stderr
    bare = Flask(__name__)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="set SECRET_KEY"):
            sign(bare, SALT, "v")
        with pytest.raises(RuntimeError, match="set SECRET_KEY"):
            unsign(bare, SALT, "v.sig")
        sign(app, SALT, "v")
