"""The request's carts: owner resolved on first touch, the sync window, cookies, signals.

`prepare_request` and `finish_request` are the app-wide hooks. The request's cart state
(who owns the cart, which cookies to write) is made on first use, decoding no cookie and
asking no store before that; under ``CART_RESTORE = "eager"`` the before-request hook uses
it at once, restoring the cart before the view runs. The after-request hook writes the
cookies of a request that used its cart, and touches no other response.

A store that does not answer fails a request's changes (StoreUnavailable), never its reads:
they answer the browser's last copy of the cart (however old), else an empty cart, and the
cart is `unavailable`. After one failure the rest of the request does not ask the store
again (a stalled store costs one timeout per request, not one per call).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from blinker import Signal
from flask import Flask, Request, Response, current_app, has_request_context, request

from . import signals
from .cart import Cart
from .catalog import Catalog
from .errors import InvalidInstance, StoreUnavailable
from .identity import (
    Identity,
    authenticated_user,
    clear_guest_cookie,
    customer_identity,
    guest_identity,
    read_guest_cookie,
    set_guest_cookie,
)
from .lines import CartState, Owner
from .request_cart import RequestCart
from .stores.base import CartKey, CartStore
from .stores.failures import PUBLIC_MESSAGE
from .sync import Entry, dump_entry, read_entry, write_entry

if TYPE_CHECKING:
    from .manager import CartManager

ENVIRON_KEY = "flask_cart.request"
_UNSET: Any = object()


def prepare_request() -> None:
    """The app-wide ``before_request`` hook. Lazy (the default): nothing to do until the
    cart is used. Eager: restore the request's cart now, before the view (a store that does
    not answer leaves it `unavailable`, and the view runs)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    manager = app.extensions.get("cart")
    if manager is None or not manager.eager(app):
        return
    endpoint = request.endpoint
    if endpoint is None or endpoint == "static" or endpoint.endswith(".static"):
        return  # a static file or a URL no route matches: no cart to show
    request_carts().cart("cart").state  # noqa: B018 - restores it


def finish_request(response: Response) -> Response:
    """The app-wide ``after_request`` hook: the cookies of a request that used its cart."""
    carts: RequestCarts | None = request.environ.get(ENVIRON_KEY)
    return response if carts is None else carts.finish(response)


def request_carts(req: Request | None = None) -> RequestCarts:
    """The current request's cart state (made on first use); `req`: the current request,
    when the caller holds it already (not Flask's proxy)."""
    if req is None:
        if not has_request_context():
            raise RuntimeError("the request's cart is only available while handling a request")
        req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    carts: RequestCarts | None = environ.get(ENVIRON_KEY)
    if carts is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        manager = app.extensions.get("cart")
        if manager is None:
            raise RuntimeError("flask-cart is not initialised on this app: call init_app")
        carts = environ[ENVIRON_KEY] = RequestCarts(manager, app, req)
    return carts


class RequestCarts:
    """Who owns this request's carts, the carts by instance, and the cookie changes due."""

    def __init__(self, manager: CartManager, app: Flask, request: Request) -> None:
        self.manager = manager
        self.app = app
        # The request itself (not Flask's proxy to it, which costs a lookup per use), held
        # weakly: the request's environ holds this object, which must not hold it back.
        self._request = weakref.ref(request)
        self.settings = manager.settings(app)
        self.catalog = Catalog(manager.loader, self.settings)
        self._app_store: CartStore | None = None
        self.carts: dict[str, RequestCart] = {}
        self._identity: Identity | None = None
        self._cookie_id: str | None = _UNSET
        self._guest_consumed = False
        self._issue_guest = False
        self._read_entries: dict[str, Entry | None] = {}
        #: Snapshots to write (None: to delete) when the response goes out.
        self._new_entries: dict[str, Entry | None] = {}
        #: The store's failure in this request (logged where it was raised), if any.
        self.failure: StoreUnavailable | None = None
        #: Instances whose cart was shown from the browser's copy: the store did not answer.
        self.degraded: set[str] = set()

    @property
    def request(self) -> Request:
        """The request these carts belong to."""
        request = self._request()
        if request is None:
            raise RuntimeError("the request's cart outlived its request")
        return request

    @property
    def store(self) -> CartStore:
        """The app's store; StoreUnavailable at once when it failed earlier in this request."""
        if self.failure is not None:
            raise StoreUnavailable(PUBLIC_MESSAGE)
        return self.app_store()

    def app_store(self) -> CartStore:
        """The app's store, whether or not it failed in this request (looked up once)."""
        store = self._app_store
        if store is None:
            store = self._app_store = self.manager.get_store(self.app)
        return store

    def store_failed(self, exc: StoreUnavailable) -> None:
        """The store did not answer (`exc` was handled, as at login): the rest of this
        request does not wait for it again (reads degrade, changes fail at once)."""
        if self.failure is None:
            self.failure = exc

    # -- owner ---------------------------------------------------------------------------

    def guest_cookie_id(self) -> str | None:
        """The id the browser's guest cookie names (valid and signed), unless used up."""
        if self._guest_consumed:
            return None
        if self._cookie_id is _UNSET:
            self._cookie_id = read_guest_cookie(self.app, self.request, self.settings)
        return self._cookie_id

    def identity(self) -> Identity:
        """The owner, resolved on first use; a customer's pending guest cart is merged then."""
        if self._identity is None:
            user = authenticated_user(self.app)
            if self._resolved():  # a login receiver ran meanwhile
                return self._identity  # type: ignore[return-value]
            if user is None:
                self._identity = guest_identity(self.guest_cookie_id(), self.settings)
            else:
                self._identity = customer_identity(user, self.settings)
                if self.guest_cookie_id() is not None:
                    self._try_merge(user)
        return self._identity

    def _try_merge(self, user: Any) -> None:
        """Merge the guest carts now; a store that does not answer leaves the guest cookie
        in place (the merge is retried by the next request) and the customer's cart shown
        from the browser's copy."""
        try:
            self.merge_guest_carts(user)
        except StoreUnavailable as exc:
            self.store_failed(exc)
            self.become_customer(user)

    def merge_guest_carts(self, user: Any) -> None:
        """Merge the browser's guest carts into `user`'s carts, then spend the guest cookie.

        Per instance: the guest cart is read (for the stock clamp), then sealed, applied once
        per merge marker in one atomic write on the customer cart (which records the guest
        cart's change ids and signed-link markers in the same write), and left as a
        tombstone. A retried, concurrent or interrupted merge therefore changes the customer
        cart once. Sends `cart_merged` for each instance that had a guest cart.
        """
        guest_id = self.guest_cookie_id()
        if guest_id is None:
            return
        self.become_customer(user)
        settings = self.settings
        for instance in settings.instances:
            guest = Cart(
                guest_id, self.store, settings.guest_ttl, instance=instance, limits=settings.limits
            )
            source = guest.refresh()
            if not source.exists or source.customer_id is not None:  # a tombstone is no cart
                continue
            caps = self.catalog.stock_caps(source.lines) if self.catalog.available else None
            target = self.cart(instance)
            moved = target.merge(guest, settings.merge_strategy, line_caps=caps, tombstone=True)
            dropped = [pid for pid in source.lines if pid not in target.state.lines]
            self.send(signals.cart_merged, cart=target, user=user, moved=moved, dropped=dropped)
        self.consume_guest_cookie()

    def link_guest_carts(self, user: Any) -> None:
        """Re-key the browser's guest carts to `user` (just registered), with their change
        ids and link markers, leaving tombstones; then spend the cookie."""
        guest_id = self.guest_cookie_id()
        if guest_id is None:
            return
        settings = self.settings
        customer = customer_identity(user, settings)
        owner = Owner(customer.customer_id, customer.ttl)
        for instance in settings.instances:
            self.store.rekey(
                CartKey(guest_id, instance),
                CartKey(customer.identifier, instance),
                owner=owner,
                limits=settings.limits,
                tombstone=True,
            )
        self.consume_guest_cookie()
        self.reset()

    def _resolved(self) -> bool:
        return self._identity is not None

    def become_customer(self, user: Any) -> Identity:
        """Make `user` the owner for the rest of the request (carts are re-resolved)."""
        self.carts.clear()
        self._identity = customer_identity(user, self.settings)
        return self._identity

    def reset(self) -> None:
        """Forget the owner and carts (after login, logout or linking)."""
        self.carts.clear()
        self._identity = None

    def consume_guest_cookie(self) -> None:
        """The guest cookie is spent: ignore it from now on and clear it in the response."""
        self._guest_consumed = True
        self._issue_guest = False

    def forget_all(self) -> None:
        """Logout: the browser becomes a guest with an empty cart."""
        self.consume_guest_cookie()
        self._new_entries = dict.fromkeys(self.settings.instances)
        self.reset()

    def _point_carts_at(self, identity: Identity) -> None:
        """Make `identity` the owner and point the request's cart objects at its carts (no
        store I/O: the caller moved or dropped what was stored)."""
        self._identity = identity
        for cart in self.carts.values():
            cart.key = CartKey(identity.identifier, cart.instance)
            cart.customer_id = identity.customer_id
            cart.ttl = identity.ttl

    def drop_guest_id(self) -> None:
        """The cookie's id names no cart of ours (sealed by a merge): start a new guest id."""
        self._point_carts_at(guest_identity(None, self.settings))
        for cart in self.carts.values():
            cart._state = CartState()

    def check_new_guest_cart(self, cart: RequestCart) -> None:
        """A write to the cookie's id created the cart: the id was dead unless another
        instance of it lives. A dead id is never adopted: its carts move to a new id."""
        old = self.identity()
        for instance in self.settings.instances:
            if instance == cart.instance:
                continue
            state = self.store.load(CartKey(old.identifier, instance))
            if state.exists and not state.sealed and state.customer_id is None:
                return
        new = guest_identity(None, self.settings)
        owner = Owner(None, self.settings.guest_ttl)
        for instance in self.settings.instances:
            moved = self.store.rekey(
                CartKey(old.identifier, instance),
                CartKey(new.identifier, instance),
                owner=owner,
                limits=self.settings.limits,
            )
            if instance == cart.instance:
                cart._state = self.catalog.reprice(moved)
        self._point_carts_at(new)
        self.write_snapshot(cart.instance, cart.state)

    # -- carts and the sync window ---------------------------------------------------------

    def cart(self, instance: str = "cart") -> RequestCart:
        if instance not in self.settings.instances:
            raise InvalidInstance(
                f"unknown cart instance {instance!r}; one of: {', '.join(self.settings.instances)}"
            )
        cart = self.carts.get(instance)
        if cart is None:
            cart = self.carts[instance] = RequestCart(self, instance)
        return cart

    def entry(self, instance: str) -> Entry | None:
        """The instance's snapshot: the one this request is to write, else the browser's."""
        if instance in self._new_entries:
            return self._new_entries[instance]
        if instance not in self._read_entries:
            self._read_entries[instance] = read_entry(
                self.app, self.request, self.settings, instance
            )
        return self._read_entries[instance]

    def write_snapshot(self, instance: str, state: CartState) -> None:
        """The store just answered `state`: write it as the instance's snapshot (the browser's
        copy for the next sync window) when the response goes out."""
        if self.settings.sync_seconds <= 0:
            return
        identifier = self.identity().identifier
        self._new_entries[instance] = Entry(identifier, self.manager.clock(), state)

    def delete_snapshot(self, instance: str) -> None:
        """The cart left the store: delete the instance's snapshot when the response goes out."""
        self._new_entries[instance] = None

    def cancel_snapshot(self, instance: str) -> None:
        """Neither write nor delete the instance's snapshot after all (a checkout rolled back
        with the shop's transaction): the browser's copy stands, else the store is read."""
        self._new_entries.pop(instance, None)

    def load(self, cart: RequestCart) -> CartState:
        """One store read, re-priced and kept as the snapshot; a foreign cart is ignored."""
        state = self.store.load(cart.key)
        if self.identity().is_guest and state.exists and (state.sealed or state.customer_id):
            self.drop_guest_id()
            return CartState()
        view = self.catalog.reprice(state)
        self.write_snapshot(cart.instance, view)
        return view

    def initial_state(self, cart: RequestCart) -> CartState:
        """The snapshot inside the window; no I/O for a new guest; else one store read."""
        identity = self.identity()
        if identity.is_guest and not identity.issued:
            return CartState()
        entry = self.entry(cart.instance)
        now = self.manager.clock()
        if entry is not None and entry.fresh(identity.identifier, now, self.settings.sync_seconds):
            return entry.state
        return self.read(cart)

    def read(self, cart: RequestCart) -> CartState:
        """One store read (see `load`). When the store does not answer: the browser's last
        copy of this owner's cart, however old, else an empty cart; the cart is then
        `unavailable`, and the copy is not renewed (the next request asks the store)."""
        if self.failure is None:
            try:
                state = self.load(cart)
            except StoreUnavailable as exc:
                self.store_failed(exc)
            else:
                self.degraded.discard(cart.instance)
                return state
        self.degraded.add(cart.instance)
        entry = self.entry(cart.instance)
        if entry is None or entry.identifier != self.identity().identifier:
            return CartState()
        return entry.state

    def change_went_through(self, cart: RequestCart, changed: bool) -> None:
        """A change of `cart` went through (`changed`: it changed the cart): a guest's cookie
        is issued or renewed, and a guest cart just created under a dead id is moved."""
        identity = self.identity()
        if not identity.is_guest:
            return
        if changed and not cart.state.replayed and identity.issued and cart.state.version == 1:
            self.check_new_guest_cart(cart)
        if cart.state.exists:
            self._issue_guest = True

    # -- the response --------------------------------------------------------------------

    def finish(self, response: Response) -> Response:
        """Write the cookies the request's cart changes call for (none if it was not used)."""
        identity = self._identity
        if identity is None and not self._new_entries and not self._guest_consumed:
            return response
        request, app = self.request, self.app
        if self._issue_guest and identity is not None and identity.is_guest:
            set_guest_cookie(app, response, request, self.settings, identity.identifier)
        elif self._guest_consumed and self.settings.cookie_name in request.cookies:
            clear_guest_cookie(response, request, self.settings)
        owner = None if identity is None else identity.identifier
        for instance, entry in self._new_entries.items():
            keep = entry is not None and entry.identifier == owner
            value = dump_entry(app, instance, entry) if entry is not None and keep else None
            write_entry(response, request, self.settings, instance, value)
        vary = response.headers.get("Vary")
        if vary is None:
            response.headers["Vary"] = "Cookie"
        elif vary != "Cookie":  # the cart routes set exactly this already
            response.vary.add("Cookie")
        return response

    def send(self, signal: Signal, **kwargs: Any) -> None:
        signal.send(self.app, **kwargs)
