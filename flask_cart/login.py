"""The Flask-Login signal adapter: at login the request's carts merge the guest cart, at
logout they forget it. Connected only when flask_login is installed; the merge itself is
``RequestCarts.merge_guest_carts``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Flask, has_request_context

from .context import RequestCarts, request_carts
from .errors import StoreUnavailable

if TYPE_CHECKING:
    from .manager import CartManager

log = logging.getLogger("flask_cart")


class LoginReceivers:
    """Flask-Login signal receivers of one CartManager (they ignore other apps)."""

    def __init__(self, manager: CartManager) -> None:
        self.manager = manager

    def _carts(self, app: Flask) -> RequestCarts | None:
        if app.extensions.get("cart") is not self.manager or not has_request_context():
            return None
        return request_carts()

    def logged_in(self, app: Flask, user: Any = None, **_: Any) -> None:
        carts = self._carts(app)
        if carts is None or user is None:
            return
        carts.reset()
        try:
            carts.merge_guest_carts(user)
        except StoreUnavailable as exc:
            # The guest cookie stays: the next request retries the merge. This one does not
            # wait for the store again: the customer's cart is shown from the browser's copy.
            log.info("flask-cart: the guest cart was not merged at login; the next request retries")
            carts.store_failed(exc)
            carts.reset()

    def logged_out(self, app: Flask, user: Any = None, **_: Any) -> None:
        carts = self._carts(app)
        if carts is not None:
            carts.forget_all()


def connect_login(manager: CartManager) -> LoginReceivers | None:
    """Connect `manager`'s receivers to Flask-Login's signals; None without Flask-Login."""
    try:
        import flask_login
    except ImportError:
        return None
    receivers = LoginReceivers(manager)
    # Weak references: the receivers live as long as the manager that keeps them.
    flask_login.user_logged_in.connect(receivers.logged_in)
    flask_login.user_loaded_from_cookie.connect(receivers.logged_in)
    flask_login.user_logged_out.connect(receivers.logged_out)
    return receivers
