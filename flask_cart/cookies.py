"""The Set-Cookie header of flask-cart's own cookies, written as werkzeug writes it.

Every change sets two cookies (the guest id and the sync snapshot). Their names and values
are URL-safe base64, dots and dashes, which RFC 6265 lets through unquoted, so the header is
one string: ``name=value; Expires=...; Max-Age=...; [Secure; ]HttpOnly; Path=/;
SameSite=...``, the attributes in werkzeug's ``dump_cookie`` order, with the Expires date
formatted once per second. Any other name or value goes through ``response.set_cookie``.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

from werkzeug.http import http_date
from werkzeug.wrappers import Response

_PLAIN = re.compile(r"[A-Za-z0-9._-]+")
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


@lru_cache(maxsize=16)
def _http_date(second: int) -> str:
    return http_date(second)


def set_cookie(
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int,
    secure: bool,
    samesite: str | None,
) -> None:
    """``response.set_cookie(name, value, max_age=..., path="/", secure=..., httponly=True,
    samesite=...)``, the same header, made in one step for plain names and values."""
    same = _SAMESITE.get(samesite.lower()) if samesite is not None else None
    if (samesite is not None and same is None) or not (
        _PLAIN.fullmatch(name) and _PLAIN.fullmatch(value)
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite=samesite,
        )
        return
    expires = _http_date(int(time.time()) + max_age)
    flags = "; Secure; HttpOnly; Path=/" if secure else "; HttpOnly; Path=/"
    site = f"; SameSite={same}" if same is not None else ""
    response.headers.add(
        "Set-Cookie", f"{name}={value}; Expires={expires}; Max-Age={max_age}{flags}{site}"
    )


__all__ = ["set_cookie"]
