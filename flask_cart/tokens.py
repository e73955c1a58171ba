"""Signed URL tokens for campaign cart links and recovery links.

A token is itsdangerous' URL-safe serializer over a JSON payload ``[expires_at, data]``
(``expires_at`` in whole Unix seconds, or None for no expiry), signed with the app's secret
key (SECRET_KEY_FALLBACKS still verify) under a salt per purpose, so a recovery token is
never accepted as a cart link. A tampered token is :class:`InvalidLink` (400); one past its
expiry is :class:`LinkExpired` (410). Both are raised before anything changes.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from itsdangerous import BadSignature, URLSafeSerializer

from .errors import InvalidLink, LinkExpired
from .signing import signing_keys

#: A token longer than this is refused unread (a URL path segment stays small).
MAX_TOKEN_LENGTH = 4096


def _serializer(app: Flask, purpose: str) -> URLSafeSerializer:
    keys = signing_keys(app)
    return URLSafeSerializer(list(keys), salt=f"flask-cart.{purpose}")


def make_token(app: Flask, purpose: str, data: Any, max_age: float | None = None) -> str:
    """A signed token carrying JSON-serialisable `data`, valid for `max_age` seconds."""
    if max_age is not None and max_age <= 0:
        raise ValueError("max_age must be a positive number of seconds, or None")
    expires = None if max_age is None else int(time.time() + max_age)
    return str(_serializer(app, purpose).dumps([expires, data]))


def read_token(app: Flask, purpose: str, token: str) -> Any:
    """The data of a token made by :func:`make_token` for `purpose`.

    Raises InvalidLink when the token is malformed or its signature is wrong, LinkExpired
    when it is past its expiry.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidLink("this link is not valid")
    try:
        payload = _serializer(app, purpose).loads(token)
    except (BadSignature, ValueError, UnicodeDecodeError):
        raise InvalidLink("this link is not valid") from None
    if not (isinstance(payload, list) and len(payload) == 2):
        raise InvalidLink("this link is not valid")
    expires, data = payload
    if expires is not None and not isinstance(expires, int):
        raise InvalidLink("this link is not valid")
    if expires is not None and time.time() >= expires:
        raise LinkExpired("this link has expired")
    return data


__all__ = ["MAX_TOKEN_LENGTH", "make_token", "read_token"]
