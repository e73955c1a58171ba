"""Flask-Login integration: merge the guest cart at login, forget it at logout, link it
to a newly registered customer. Connected only when flask_login is installed."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from flask import Flask, has_request_context

from . import signals
from .cart import Cart
from .context import RequestCarts, request_carts
from .errors import StoreUnavailable
from .identity import customer_identity
from .lines import Owner
from .stores.base import CartKey

if TYPE_CHECKING:
    from .manager import CartManager

log = logging.getLogger("flask_cart")


def merge_guest_cart(ctx: RequestCarts, user: Any) -> None:
    """Merge the browser's guest carts into `user`'s carts, then spend the guest cookie.

    Per instance: the guest cart is read (for the stock clamp), then `Cart.merge` seals it,
    applies it once per merge marker in one atomic write on the customer cart, and deletes
    it. A retried, concurrent or interrupted merge therefore changes the customer cart once.
    Sends `cart_merged` for each instance that had a guest cart.
    """
    guest_id = ctx.guest_cookie_id()
    if guest_id is None:
        return
    ctx.become_customer(user)
    settings = ctx.settings
    for instance in settings.instances:
        guest = Cart(
            guest_id, ctx.store, settings.guest_ttl, instance=instance, limits=settings.limits
        )
        source = guest.refresh()
        if not source.exists or source.customer_id is not None:
            continue
        caps = ctx.catalog.stock_caps(source.lines) if ctx.catalog.available else None
        target = ctx.cart(instance)
        moved = target.merge(guest, settings.merge_strategy, line_caps=caps)
        dropped = [pid for pid in source.lines if pid not in target.state.lines]
        ctx.send(signals.cart_merged, cart=target, user=user, moved=moved, dropped=dropped)
    ctx.consume_guest_cookie()


def link_guest_cart(ctx: RequestCarts, user: Any) -> None:
    """Re-key the browser's guest carts to `user` (just registered) and spend the cookie."""
    guest_id = ctx.guest_cookie_id()
    if guest_id is None:
        return
    settings = ctx.settings
    customer = customer_identity(user, settings)
    owner = Owner(customer.customer_id, customer.ttl)
    for instance in settings.instances:
        ctx.store.rekey(
            CartKey(guest_id, instance),
            CartKey(customer.identifier, instance),
            owner=owner,
            limits=settings.limits,
        )
    ctx.consume_guest_cookie()
    ctx.reset()


class LoginReceivers:
    """Flask-Login signal receivers of one CartManager (they ignore other apps)."""

    def __init__(self, manager: CartManager) -> None:
        self.manager = manager

    def _ctx(self, app: Flask) -> RequestCarts | None:
        if app.extensions.get("cart") is not self.manager or not has_request_context():
            return None
        return request_carts()

    def logged_in(self, app: Flask, user: Any = None, **_: Any) -> None:
        ctx = self._ctx(app)
        if ctx is None or user is None:
            return
        ctx.reset()
        started = time.monotonic()
        try:
            merge_guest_cart(ctx, user)
        except StoreUnavailable as exc:
            # The guest cookie stays: the merge is retried when the cart is next touched.
            log.warning("flask-cart: guest cart not merged at login, will retry: %s", exc)
            ctx.reset()
            if time.monotonic() - started >= ctx.settings.store_timeout:
                # A stalled store, not a dropped connection: this request waited out the
                # timeout once and does not wait again (the next request retries).
                ctx.store_failed(exc)

    def logged_out(self, app: Flask, user: Any = None, **_: Any) -> None:
        ctx = self._ctx(app)
        if ctx is not None:
            ctx.forget_all()


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
