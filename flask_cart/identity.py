"""Who owns the request's cart: the Flask-Login user, else the signed guest cookie.

Guest identifiers are random UUID4 strings the server issued, signed with the app's secret
key; customer identifiers are ``customer:<user id>``. A guest cookie is checked for its
signature and for the UUID4 form, so it can never name a customer's cart. No store I/O here.
"""

from __future__ import annotations

import re
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response, current_app

from .cookies import set_cookie
from .signing import sign, unsign

if TYPE_CHECKING:
    from .config import Settings

GUEST_SALT = "flask-cart.guest-cart-id"
MAX_COOKIE_CHARS = 200


@dataclass
class Identity:
    """The owner of the request's carts.

    `issued` is True when the browser already holds the identifier (a customer, or a guest
    whose signed cookie named it); a guest id minted in this request has nothing stored yet.
    """

    identifier: str
    customer_id: str | None
    ttl: int
    issued: bool = True

    @property
    def is_guest(self) -> bool:
        return self.customer_id is None


#: A canonical lower-case UUID4 (version 4, RFC 4122 variant): what str(uuid.uuid4()) gives.
_GUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def is_guest_id(value: str) -> bool:
    """True for a canonical, lower-case UUID4 string."""
    return _GUEST_ID.fullmatch(value) is not None


def new_guest_id() -> str:
    return str(uuid.uuid4())


def read_guest_cookie(app: Flask, request: Request, settings: Settings) -> str | None:
    """The guest id of a well-formed, well-signed cookie; None for anything else."""
    raw = request.cookies.get(settings.cookie_name)
    if not raw or len(raw) > MAX_COOKIE_CHARS:
        return None
    value = unsign(app, GUEST_SALT, raw)
    return value if value is not None and is_guest_id(value) else None


def authenticated_user(app: Flask | None = None) -> Any:
    """The Flask-Login user when one is logged in, else None (also without Flask-Login);
    `app`: the current app, when the caller holds it already."""
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    if "flask_login" not in sys.modules or not hasattr(app, "login_manager"):
        return None
    from flask_login import current_user

    user = current_user._get_current_object()
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user


def customer_identity(user: Any, settings: Settings) -> Identity:
    """The identity of a logged-in user's carts."""
    user_id = user.get_id()
    if user_id is None:
        raise ValueError("a logged-in user's get_id() returned None")
    customer_id = str(user_id)
    return Identity(f"customer:{customer_id}", customer_id, settings.customer_ttl)


def guest_identity(guest_id: str | None, settings: Settings) -> Identity:
    """A guest's identity: the cookie's id, or a new id not yet issued to the browser."""
    if guest_id is None:
        return Identity(new_guest_id(), None, settings.guest_ttl, issued=False)
    return Identity(guest_id, None, settings.guest_ttl)


def cookie_secure(settings: Settings, request: Request) -> bool:
    """CART_COOKIE_SECURE, or (when None) whether the request came over HTTPS."""
    return request.is_secure if settings.cookie_secure is None else settings.cookie_secure


def set_guest_cookie(
    app: Flask, response: Response, request: Request, settings: Settings, guest_id: str
) -> None:
    """Issue (or renew) the signed guest cookie: HttpOnly, Path /, no Domain."""
    set_cookie(
        response,
        settings.cookie_name,
        sign(app, GUEST_SALT, guest_id),
        max_age=settings.guest_ttl,
        secure=cookie_secure(settings, request),
        samesite=settings.cookie_samesite,
    )


def clear_guest_cookie(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(
        settings.cookie_name,
        path="/",
        secure=cookie_secure(settings, request),
        httponly=True,
        samesite=settings.cookie_samesite,
    )
