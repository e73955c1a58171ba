"""Cookie signatures: itsdangerous' `Signer` format (HMAC-SHA1, "django-concat" key
derivation), computed with one C call and with the derived keys cached.

A value signed here is ``value.signature`` exactly as ``itsdangerous.Signer(keys, salt=...)
.sign(value)`` makes it, so cookies issued by either verify under the other. itsdangerous
itself derives the key again and runs the pure-Python HMAC on every call (about a third of
the CPU a cart change spent on cookies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from functools import lru_cache

from flask import Flask

#: The last (secret key, fallbacks, their keys) signing_keys gave: the config's own objects,
#: compared by identity (a request signs and checks up to three values with the same keys).
#: Only a key that signs and fallbacks that cannot change in place (None, a tuple) are kept.
_last: tuple[object, object, tuple[bytes, ...]] = (object(), object(), ())


def signing_keys(app: Flask) -> tuple[bytes, ...]:
    """SECRET_KEY_FALLBACKS (they still verify) and then the app's secret key (it signs)."""
    global _last
    config = app.config  # one lookup through current_app's proxy, not two
    key = config.get("SECRET_KEY")
    fallbacks = config.get("SECRET_KEY_FALLBACKS")
    last_key, last_fallbacks, last_keys = _last
    if key is last_key and fallbacks is last_fallbacks:
        return last_keys  # the same str or bytes key and the same tuple (or no) fallbacks
    if not key:
        raise RuntimeError("flask-cart signs its cookies with the app's secret key: set SECRET_KEY")
    keys = (*(fallbacks or ()), key)
    if not all(type(k) is str or type(k) is bytes for k in keys):
        return _encoded.__wrapped__(keys)  # a bytearray, a memoryview: read every time
    encoded = _encoded(keys)
    if fallbacks is None or type(fallbacks) is tuple:  # a list may change in place
        _last = (key, fallbacks, encoded)
    return encoded


@lru_cache(maxsize=16)
def _encoded(keys: tuple[str | bytes, ...]) -> tuple[bytes, ...]:
    return tuple(k.encode() if isinstance(k, str) else bytes(k) for k in keys)


@lru_cache(maxsize=64)
def _derived(keys: tuple[bytes, ...], salt: bytes) -> tuple[bytes, ...]:
    """The HMAC keys itsdangerous derives from `keys`, newest (the signing one) first."""
    return tuple(hashlib.sha1(salt + b"signer" + key).digest() for key in reversed(keys))


def _signature(key: bytes, value: bytes) -> bytes:
    return base64.urlsafe_b64encode(hmac.digest(key, value, "sha1")).rstrip(b"=")


def signer(app: Flask, salt: str) -> Callable[[str], str]:
    """:func:`sign` with `salt` for many values: the key is looked up once."""
    key = _derived(signing_keys(app), salt.encode())[0]

    def sign_value(value: str) -> str:
        return f"{value}.{_signature(key, value.encode()).decode('ascii')}"

    return sign_value


def sign(app: Flask, salt: str, value: str) -> str:
    """``value.signature``, signed with the app's secret key."""
    return signer(app, salt)(value)


def unsign(app: Flask, salt: str, signed: str) -> str | None:
    """The value of a well-signed ``value.signature`` (under any of the app's keys), else None."""
    value, dot, signature = signed.rpartition(".")
    if not dot:
        return None
    try:
        raw, given = value.encode("ascii"), signature.encode("ascii")
    except UnicodeEncodeError:
        return None
    for key in _derived(signing_keys(app), salt.encode()):
        if hmac.compare_digest(_signature(key, raw), given):
            return value
    return None
