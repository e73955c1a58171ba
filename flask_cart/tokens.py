"""Signed URL tokens for campaign cart links and recovery links.

A token is ``payload.signature``: the payload is the URL-safe base64 of the JSON
``[expires_at, data]`` (``expires_at`` in Unix seconds, or null for no expiry), the signature
an HMAC in itsdangerous' format by flask_cart.signing (the app's secret key signs,
SECRET_KEY_FALLBACKS still verify), under a salt per purpose, so a recovery token is never
accepted as a cart link. A tampered token is :class:`InvalidLink` (400); one past its
expiry is :class:`LinkExpired` (410). Both are raised before anything changes. A
confirmation page's token (:func:`confirm_token`) is bound to the URL its button posts to,
expires after CONFIRM_SECONDS and carries a nonce the change records once.

flask_cart.signing caches the derived keys and signs with one C call: ``flask cart
abandoned`` makes one recovery link per report, so the token is on its hot path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from .errors import InvalidLink, LinkExpired
from .signing import signer, unsign

#: A token longer than this is refused unread (a URL path segment stays small).
MAX_TOKEN_LENGTH = 4096
#: The latest expiry a token may carry (the year 9999, in Unix seconds).
MAX_EXPIRY = 253402300799
#: Purpose of the token a confirmation page's button posts (``cart_confirm``).
CONFIRM_PURPOSE = "confirm"
#: How long a confirmation page's button works, in seconds.
CONFIRM_SECONDS = 600


#: json.dumps(..., separators=(",", ":")) without building an encoder per call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _salt(purpose: str) -> str:
    return f"flask-cart.{purpose}"


def _expiry(max_age: float | None) -> float | None:
    """The expiry (Unix seconds) of a token made now, valid for `max_age` seconds: a
    finite positive number (not a bool, NaN or infinity, which would never expire)."""
    if max_age is None:
        return None
    if (
        isinstance(max_age, bool)
        or not isinstance(max_age, int | float)
        or not math.isfinite(max_age)
        or max_age <= 0
    ):
        raise ValueError("max_age must be a positive number of seconds, or None")
    expires = round(time.time() + max_age, 3)
    if not math.isfinite(expires) or expires > MAX_EXPIRY:
        raise ValueError("max_age is too large: use None for a link that does not expire")
    return expires


def token_maker(app: Flask, purpose: str, max_age: float | None = None) -> Callable[[Any], str]:
    """:func:`make_token` for many tokens at once (``flask cart abandoned`` makes one per
    report): ``make(data)``, with one expiry and the signing key derived once for all."""
    head = f"[{json.dumps(_expiry(max_age))},"
    sign_payload = signer(app, _salt(purpose))

    def make(data: Any) -> str:
        raw = f"{head}{_compact_json(data)}]".encode()
        return sign_payload(base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii"))

    return make


def make_token(app: Flask, purpose: str, data: Any, max_age: float | None = None) -> str:
    """A signed token carrying JSON-serialisable `data`, valid for `max_age` seconds."""
    return token_maker(app, purpose, max_age)(data)


def read_token(app: Flask, purpose: str, token: str) -> Any:
    """The data of a token made by :func:`make_token` for `purpose`.

    Raises InvalidLink when the token is malformed or its signature is wrong, LinkExpired
    when it is past its expiry.
    """
    invalid = InvalidLink("this link is not valid")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise invalid
    payload = unsign(app, _salt(purpose), token)
    if payload is None:
        raise invalid
    try:
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if not (isinstance(decoded, list) and len(decoded) == 2):
        raise invalid
    expires, data = decoded
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise invalid
    if expires is not None and time.time() >= expires:
        raise LinkExpired("this link has expired")
    return data


def confirm_token(app: Flask, target: str) -> str:
    """The token of a confirmation page whose button posts to `target` (a path and query):
    valid there only, for CONFIRM_SECONDS, carrying a random nonce that makes its use
    recordable once."""
    data = {"u": _digest(target), "n": secrets.token_hex(12)}
    return make_token(app, CONFIRM_PURPOSE, data, CONFIRM_SECONDS)


def read_confirm_token(app: Flask, target: str, token: str) -> str:
    """The nonce of a confirmation token made for `target`; InvalidLink when it is not one
    (another URL's, tampered, malformed), LinkExpired when it is too old."""
    data = read_token(app, CONFIRM_PURPOSE, token)
    if not isinstance(data, dict) or data.get("u") != _digest(target):
        raise InvalidLink("this confirmation is not for this link")
    nonce = data.get("n")
    if not isinstance(nonce, str) or not nonce.isalnum() or len(nonce) > 64:
        raise InvalidLink("this confirmation is not valid")
    return nonce


def _digest(target: str) -> str:
    return hashlib.sha256(target.encode("utf-8", "surrogateescape")).hexdigest()[:32]


__all__ = [
    "CONFIRM_SECONDS",
    "MAX_TOKEN_LENGTH",
    "confirm_token",
    "make_token",
    "read_confirm_token",
    "read_token",
    "token_maker",
]
