"""`RequestCart`: the request's cart of one instance (what `current_cart` points to).

Reads are served inside the sync window; changes go to the store as deltas; the store's
answer is re-priced through the product loader and kept as the next snapshot. The ecart
methods send the signals, and the `*_item` methods are what the HTTP routes call.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from blinker import Signal
from flask import Response

from . import signals
from .answer import json_response, writes_default_json
from .cart import Cart, new_line
from .errors import (
    CartClosed,
    LineNotFound,
    ProductUnavailable,
    QuantityLimitExceeded,
    StockExceeded,
    StoreUnavailable,
    UnknownProduct,
)
from .lines import (
    CartState,
    Limits,
    Line,
    MergeOutcome,
    check_product_id,
    check_quantity,
    money_str,
)
from .reminders import check_email
from .stores.base import is_tombstone
from .stores.failures import PUBLIC_MESSAGE
from .totals import is_available, priced_details, snapshot

if TYPE_CHECKING:
    from .context import RequestCarts
    from .stores.base import CartStore

MAX_NAME_CHARS = 200
#: A guest cart sealed this recently is being merged at a login (in another tab): a write
#: to it is refused (409) rather than moved to a new guest id, which that login's answer,
#: clearing the guest cookie, would orphan. An older seal is an abandoned merge.
MERGE_GRACE_SECONDS = 30
#: What today's catalogue answers a change that a resent keyed change may have been
#: applied before (see RequestCart._replayed).
CATALOGUE_REFUSALS = (UnknownProduct, ProductUnavailable, StockExceeded, QuantityLimitExceeded)


def on_outcome(
    session: Any, *, committed: Callable[[], None], rolled_back: Callable[[], None]
) -> None:
    """Call `committed` when `session`'s transaction commits, `rolled_back` when it rolls
    back, whichever comes first, once; neither when the session is closed without either
    (its transaction, and the removal in it, is then rolled back: nothing to do)."""
    # Local: only checkout(session=...) needs it; an app on the Redis store never loads it.
    from sqlalchemy import event
    from sqlalchemy.orm import scoped_session

    target = session() if isinstance(session, scoped_session) else session
    done: list[bool] = []

    def once(action: Callable[[], None]) -> Callable[[Any], None]:
        def listener(_session: Any) -> None:
            if not done:
                done.append(True)
                action()

        return listener

    event.listen(target, "after_commit", once(committed), once=True)
    event.listen(target, "after_rollback", once(rolled_back), once=True)


class RequestCart(Cart):
    """The request's cart of one instance: reads served inside the sync window, changes sent
    to the store as deltas, the store's answer re-priced and kept as the snapshot."""

    _cached = True
    _idempotency_key: str | None = None

    def __init__(self, request_carts: RequestCarts, instance: str) -> None:
        identity = request_carts.identity()
        super().__init__(
            identity.identifier,
            # used through `store`, which checks the request
            request_carts.app_store(),
            identity.ttl,
            instance=instance,
            customer_id=identity.customer_id,
            limits=request_carts.settings.limits,
        )
        #: The request's carts (owner, snapshots, cookies, catalogue) this cart belongs to.
        self._request_carts = request_carts
        self._quantum = request_carts.settings.money_quantum
        self._line_fields = request_carts.settings.line_fields

    # -- reading -------------------------------------------------------------------------

    @property
    def state(self) -> CartState:
        if self._state is None:
            self._state = self._request_carts.initial_state(self)
        return self._state

    def _read(self) -> CartState:
        return self.state

    def refresh(self) -> CartState:
        """Read the cart from the store now (and restart the sync window); a store that does
        not answer gives the browser's last copy, and the cart is `unavailable`."""
        self._state = self._request_carts.read(self)
        return self._state

    @property
    def store(self) -> CartStore:
        """The app's store; after it failed in this request, StoreUnavailable at once."""
        return self._request_carts.store

    @store.setter
    def store(self, value: CartStore) -> None:
        """Ignored: a request's cart always goes through the request's store (see above)."""

    def _keep_store_answer(self, state: CartState) -> CartState:
        """The store's answer to a change, re-priced: kept as the cart's state and as the
        request's snapshot to write."""
        view = self._request_carts.catalog.reprice(state)
        self._state = view
        self._request_carts.write_snapshot(self.instance, view)
        return view

    def idempotent(self, key: str | None) -> None:
        """Apply the next change at most once per `key` (an HTTP Idempotency-Key) in this
        cart, for 24 h: a repeat of it changes nothing; another change with it raises
        IdempotencyKeyReused. The key follows the lines into a customer's cart at login."""
        self._idempotency_key = key

    def _next_op(self) -> str | None:
        """The change id of the next change: the same for one key in every cart of one
        instance (the records are kept per cart), so a retry after a login merge, which
        copies the guest cart's records, is recognised in the customer's cart."""
        key = self._idempotency_key
        if key is None:
            return None
        scoped = f"{self.instance}\0{key}".encode()
        return hashlib.sha256(scoped).hexdigest()[:32]

    def being_merged(self) -> bool:
        """Internal (flask-cart's changes and recovery links), not for shops: True while
        this sealed guest cart is being merged at a login, or was (a tombstone): a change sent
        with its cookie then would land in a cart nobody holds. One store read."""
        state = self.store.load(self.key)
        if is_tombstone(state):
            return True
        sealed_at = state.updated_at
        if sealed_at is None:
            return False
        return time.time() - sealed_at.timestamp() < MERGE_GRACE_SECONDS

    def _change(self, operation: Callable[[], Any], changed: bool | None = True) -> Any:
        """Run one store change; a guest id found sealed is dropped for a new one, once.

        `changed` None means "the operation's result says whether it changed the cart".
        """
        try:
            try:
                result = operation()
            except CartClosed:
                if not self._request_carts.identity().is_guest:
                    raise
                if self.being_merged():
                    raise CartClosed(
                        "this cart was merged into a customer's cart at a login: reload the page"
                    ) from None
                self._request_carts.drop_guest_id()
                result = operation()
        finally:
            self._idempotency_key = None
        self._request_carts.change_went_through(self, bool(result) if changed is None else changed)
        return result

    def run_store_merge(
        self, merge: Callable[[str | None], MergeOutcome], *, changed: bool | None = None
    ) -> MergeOutcome:
        """Internal (flask-cart's cart links and recovery links), not for shops: run one
        store merge into this cart as a change of the request.

        ``merge(op)`` makes the store call on ``self.key`` and returns its outcome; `op` is
        the change id of the request's Idempotency-Key (None without one). When the guest
        cookie's cart is found sealed, the id is dropped for a new one and `merge` runs once
        more. The outcome's state is kept as the cart's (re-priced) and as the snapshot.
        `changed`: whether the change counts as changing the cart (None: unless the
        outcome was already merged). Sends no signal (see `send_unless_replayed`).
        """
        outcomes: list[MergeOutcome] = []

        def operation() -> bool:
            outcome = merge(self._next_op())
            self._keep_store_answer(outcome.state)
            outcomes.append(outcome)
            return not outcome.already_merged

        self._change(operation, changed=changed)
        return outcomes[-1]

    def send_unless_replayed(
        self, signal: Signal, *, line_of: str | None = None, **kwargs: Any
    ) -> None:
        """Internal (flask-cart's changes and cart links), not for shops: send `signal` with
        ``cart=self`` and `kwargs`, unless the change was a replay the store had applied
        before or nothing listens; `line_of`: a product id whose line goes along as `line`."""
        if not signal.receivers or (self._state is not None and self._state.replayed):
            return
        if line_of is not None:
            kwargs["line"] = self.get_product(line_of)
        self._request_carts.send(signal, cart=self, **kwargs)

    # -- the ecart API, with signals --------------------------------------------------------

    def add(self, product_id: str, unit_cost: Any, quantity: int = 1, **extra: Any) -> None:
        self._add_line(new_line(product_id, unit_cost, quantity, extra, self.limits), None)

    def _add_line(self, line: Line, stock: int | None) -> None:
        limits = self.limits
        if stock is not None:
            if stock < 1:
                raise StockExceeded(
                    f"only 0 of {line.product_id!r} in stock",
                    product_id=line.product_id,
                    limit=0,
                )
            # The store checks the stock as a cap, after it has recognised a resent change.
            if stock < limits.max_line_quantity:
                limits = Limits(stock, limits.max_lines)

        def operation() -> None:
            op = self._next_op()
            state = self.store.add(self.key, line, owner=self.owner, limits=limits, op=op)
            self._keep_store_answer(state)

        try:
            self._change(operation)
        except QuantityLimitExceeded as exc:
            if limits is self.limits:
                raise
            in_cart = exc.details.get("in_cart", 0)
            already = f" ({in_cart} already in the cart)" if in_cart else ""
            raise StockExceeded(
                f"only {stock} of {line.product_id!r} in stock{already}",
                product_id=line.product_id,
                limit=stock,
                in_cart=in_cart,
            ) from None
        self.send_unless_replayed(
            signals.cart_item_added,
            product_id=line.product_id,
            quantity=line.quantity,
            line_of=line.product_id,
        )

    def update(self, product_id: str, quantity: int) -> None:
        self._change(lambda: Cart.update(self, product_id, quantity))
        if quantity == 0:
            self.send_unless_replayed(signals.cart_item_removed, product_id=product_id)
        else:
            self.send_unless_replayed(
                signals.cart_item_updated,
                product_id=product_id,
                quantity=quantity,
                line_of=product_id,
            )

    def remove(self, product_id: str) -> bool:
        removed: bool = self._change(lambda: Cart.remove(self, product_id), changed=None)
        if removed:
            self.send_unless_replayed(signals.cart_item_removed, product_id=product_id)
        return removed

    def clear(self) -> None:
        self._change(lambda: Cart.clear(self))
        self.send_unless_replayed(signals.cart_cleared)

    def destroy(self) -> None:
        Cart.destroy(self)
        self._request_carts.delete_snapshot(self.instance)

    def get_ttl(self) -> int:
        """Seconds until the cart expires (0 when there is none). A read: while the store
        does not answer it is 0 and the cart `unavailable` (`set_ttl`, a change, raises)."""
        identity = self._request_carts.identity()
        if identity.is_guest and not identity.issued:
            return 0
        if self._request_carts.failure is None:
            try:
                return self.store.get_ttl(self.key)
            except StoreUnavailable as exc:
                self._request_carts.store_failed(exc)
        self.state  # noqa: B018 - the cart shown is the browser's copy (or empty)
        self._request_carts.degraded.add(self.instance)
        return 0

    def set_email(self, address: str | None) -> bool:
        """Keep a contact address with this cart for abandoned-cart reminders (None forgets
        it); InvalidInput (400) for a bad address. It goes with the cart at checkout and
        at a merge into a customer's cart. False when there is no cart yet to keep it with.
        """
        email = None if address is None else check_email(address)
        identity = self._request_carts.identity()
        if identity.is_guest and not identity.issued:
            return False
        return self.store.set_email(self.key, email)

    def copy(self, new_identifier: str | int) -> Cart:
        """A plain copy of the stored lines (without display flags) at `new_identifier`."""
        plain = Cart(
            self.identifier,
            self.store,
            self.ttl,
            instance=self.instance,
            customer_id=self.customer_id,
            limits=self.limits,
        )
        return plain.copy(new_identifier)

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "currency": self._request_carts.settings.currency}

    def json_response(self) -> Response:
        """The cart routes' answer: `as_json` as the app's JSON provider answers it."""
        app = self._request_carts.app
        if self._line_fields or not writes_default_json(app):
            response: Response = app.json.response(self.as_json())  # type: ignore[assignment]
            return response
        return json_response(
            app,
            self._read(),
            instance=self.instance,
            currency=self._request_carts.settings.currency,
            unit=self._quantum,
        )

    def get(self) -> dict[str, dict[str, Any]]:
        """Every line: product id -> details (`unit_cost` and `line_total` as Decimals in the
        currency's minor unit, `quantity`, `name`, the flags and the CART_LINE_FIELDS)."""
        unit = self._quantum
        return {pid: priced_details(line, unit) for pid, line in self._read().lines.items()}

    def get_product(self, product_id: str) -> dict[str, Any]:
        line = self._read().lines.get(product_id)
        return priced_details(line, self._quantum) if line else {}

    def remove_unavailable(self) -> list[str]:
        """Remove the lines the catalogue cannot sell now (one change and one
        `cart_item_removed` signal per line); returns their product ids."""
        removed = []
        for product_id in self._unavailable(self.refresh()):
            if self.remove(product_id):
                removed.append(product_id)
        return removed

    def _unavailable(self, state: CartState) -> list[str]:
        return [pid for pid, line in state.lines.items() if not is_available(line)]

    def _checkout_state(self) -> CartState:
        """The store's cart, re-priced now; the copy a read falls back to while the store
        does not answer is never checked out (StoreUnavailable)."""
        state = self.refresh()
        if self.instance in self._request_carts.degraded:
            raise StoreUnavailable(PUBLIC_MESSAGE)
        return state

    _session_error = (
        "checkout(session=...) joins the app's SQL transaction and needs the carts in the "
        "app's Flask-SQLAlchemy database; check carts.uses_app_db() before passing a session"
    )

    def _still_orderable(self, state: CartState) -> bool:
        """Whether the stock still covers every line (checked at checkout, not in the token,
        so that showing a cart inside the sync window asks the product loader nothing)."""
        catalog = self._request_carts.catalog
        if not catalog.available:
            return True
        for line in state.lines.values():
            stock = getattr(catalog.lookup(line.product_id), "stock", None)
            if stock is not None and line.quantity > stock:
                return False
        return True

    def _view(self, state: CartState) -> CartState:
        return self._request_carts.catalog.reprice(state)

    def checkout(self, expect: str | None = None, *, session: Any = None) -> dict[str, Any]:
        """The final snapshot, re-priced; the cart leaves the store, the snapshot cookie and
        the guest cookie. Sends `cart_checked_out`. See `Cart.checkout` for `expect` (the
        `token` the customer reviewed) and `session`."""
        if session is not None:
            self._check_session(session)
        identity = self._request_carts.identity()
        if identity.is_guest and not identity.issued:
            self._state = CartState()
            if expect is not None and expect != self.token:
                raise self._changed()
            result = snapshot(self.key, CartState(), self._quantum)
            session = None  # nothing was removed: nothing to wait for
        else:
            result = super().checkout(expect, session=session)
        self._state = CartState()
        if session is None:
            self._taken(identity.is_guest)
        else:  # the cookies follow the removal: committed or rolled back with the session
            on_outcome(
                session,
                committed=lambda: self._taken(identity.is_guest),
                rolled_back=self._kept,
            )
        self.send_unless_replayed(signals.cart_checked_out, snapshot=result)
        return result

    def _taken(self, guest: bool) -> None:
        """The cart left the store: its copy goes, and a guest's cookie."""
        self._request_carts.delete_snapshot(self.instance)
        if guest:
            self._request_carts.consume_guest_cookie()

    def _kept(self) -> None:
        """The removal was rolled back: the cart is the store's again (read on next use)."""
        self._state = None
        self._request_carts.cancel_snapshot(self.instance)

    # -- what the HTTP routes call: prices and stock from the product loader ----------------

    def add_item(self, product_id: object, quantity: object = 1) -> None:
        """Add units of a catalogue product at its current price (404 unknown, 422 stock).
        A keyed change applied before the catalogue moved answers the cart as it is now."""
        product_id = check_product_id(product_id)
        quantity = check_quantity(quantity, self.limits)
        op = self._next_op()
        try:
            product = self._request_carts.catalog.get(product_id)
            if product is None:
                raise UnknownProduct(f"unknown product {product_id!r}", product_id=product_id)
            extra = {} if product.name is None else {"name": product.name[:MAX_NAME_CHARS]}
            line = Line(product_id, quantity, money_str(product.unit_cost), extra)
            self._add_line(line, product.stock)
        except CATALOGUE_REFUSALS:
            if not self._replayed(op, "add", product_id, quantity):
                raise

    def set_item(self, product_id: object, quantity: object) -> None:
        """Set a line's quantity (0 removes it), within the caps and the stock. A keyed
        change applied before the catalogue moved answers the cart as it is now."""
        product_id = check_product_id(product_id)
        quantity = check_quantity(quantity, self.limits, allow_zero=True)
        if quantity > 0:
            op = self._next_op()
            try:
                self._check_stock(product_id, quantity)
            except CATALOGUE_REFUSALS:
                if self._replayed(op, "set", product_id, quantity):
                    return
                raise
        self.update(product_id, quantity)

    def _check_stock(self, product_id: str, quantity: int) -> None:
        """UnknownProduct, ProductUnavailable or StockExceeded unless the catalogue sells
        `quantity` units of the product now."""
        product = self._request_carts.catalog.get(product_id)
        if product is None:
            raise UnknownProduct(f"unknown product {product_id!r}", product_id=product_id)
        if product.stock is not None and quantity > product.stock:
            raise StockExceeded(
                f"only {max(product.stock, 0)} of {product_id!r} in stock",
                product_id=product_id,
                limit=max(product.stock, 0),
            )

    def _replayed(self, op: str | None, kind: str, *parts: object) -> bool:
        """After a keyed change failed today's catalogue checks: True, the cart as it is now
        answered (`replayed`, no signal), when the store recorded the key for this very
        change (applied before the catalogue moved); IdempotencyKeyReused when it recorded
        it for another change; else False. One store read, on this failure path only."""
        self._idempotency_key = None
        if op is None:
            return False
        identity = self._request_carts.identity()
        if identity.is_guest and not identity.issued:
            return False
        if not self.store.applied(self.key, op, kind, *parts):
            return False
        self._state = replace(self.refresh(), replayed=True)
        self._request_carts.change_went_through(self, False)
        return True

    def remove_item(self, product_id: object) -> None:
        product_id = check_product_id(product_id)
        if not self.remove(product_id):
            raise LineNotFound(f"product {product_id!r} is not in the cart", product_id=product_id)

    # -- what the request knows about its copy ----------------------------------------------

    @property
    def sync_age(self) -> float | None:
        """Seconds since the store was last asked about this cart for this browser: the age of
        the browser's cached copy (or 0 right after this request read or changed the cart);
        None when the browser holds no copy of this owner's cart."""
        entry = self._request_carts.entry(self.instance)
        if entry is None or entry.identifier != self.identifier:
            return None
        return max(self._request_carts.manager.clock() - entry.checked_at, 0.0)

    def stored(self) -> CartState:
        """The cart as the store holds it now, at the prices its lines were added at (one
        read; the request's cart and its sync window stay as they are)."""
        return self.store.load(self.key)

    @property
    def unavailable(self) -> bool:
        """True when the store did not answer this request's read of the cart: what the cart
        shows is the browser's last copy of it (however old), else an empty cart. Changes
        and checkout raise StoreUnavailable meanwhile. Reads the cart first if not yet read."""
        self.state  # noqa: B018 - a lazy cart is read (or falls back) first
        return self.instance in self._request_carts.degraded
