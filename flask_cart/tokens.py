"""Signed URL tokens for campaign cart links and recovery links.

A token is ``payload.signature``: the payload is the URL-safe base64 of the JSON
``[expires_at, data]`` (``expires_at`` in Unix seconds, or null for no expiry), the signature
an HMAC in itsdangerous' format by flask_cart.signing (the app's secret key signs,
SECRET_KEY_FALLBACKS still verify), under a salt per purpose, so a recovery token is never
accepted as a cart link. A tampered token is :class:`InvalidLink` (400); one past its
expiry is :class:`LinkExpired` (410). Both are raised before anything changes.

flask_cart.signing caches the derived keys and signs with one C call: ``flask cart
abandoned`` makes one recovery link per report, so the token is on its hot path.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from .errors import InvalidLink, LinkExpired
from .signing import signer, unsign

#: A token longer than this is refused unread (a URL path segment stays small).
MAX_TOKEN_LENGTH = 4096


#: json.dumps(..., separators=(",", ":")) without building an encoder per call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _salt(purpose: str) -> str:
    return f"flask-cart.{purpose}"


def _expiry(max_age: float | None) -> float | None:
    """The expiry (Unix seconds) of a token made now, valid for `max_age` seconds."""
    if max_age is None:
        return None
    if max_age <= 0:
        raise ValueError("max_age must be a positive number of seconds, or None")
    return round(time.time() + max_age, 3)


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


__all__ = ["MAX_TOKEN_LENGTH", "make_token", "read_token", "token_maker"]
