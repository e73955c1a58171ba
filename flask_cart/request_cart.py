"""`RequestCart`: the request's cart of one instance (what `current_cart` points to).

Reads are served inside the sync window; changes go to the store as deltas; the store's
answer is re-priced through the product loader and kept as the next snapshot. The ecart
methods send the signals, and the `*_item` methods are what the HTTP routes call.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from blinker import Signal

from . import signals
from .cart import Cart, new_line, snapshot
from .errors import (
    CartClosed,
    LineNotFound,
    QuantityLimitExceeded,
    StockExceeded,
    UnknownProduct,
)
from .lines import (
    CartState,
    Limits,
    Line,
    check_product_id,
    check_quantity,
    money_str,
)

if TYPE_CHECKING:
    from .context import RequestCarts

MAX_NAME_CHARS = 200
#: A guest cart sealed this recently is being merged at a login (in another tab): a write
#: to it is refused (409) rather than moved to a new guest id, which that login's answer,
#: clearing the guest cookie, would orphan. An older seal is an abandoned merge.
MERGE_GRACE_SECONDS = 30


class RequestCart(Cart):
    """The request's cart of one instance: reads served inside the sync window, changes sent
    to the store as deltas, the store's answer re-priced and kept as the snapshot."""

    _cached = True
    _idempotency_key: str | None = None

    def __init__(self, ctx: RequestCarts, instance: str) -> None:
        identity = ctx.identity()
        super().__init__(
            identity.identifier,
            ctx.store,
            identity.ttl,
            instance=instance,
            customer_id=identity.customer_id,
            limits=ctx.settings.limits,
        )
        self._ctx = ctx

    # -- reading -------------------------------------------------------------------------

    @property
    def state(self) -> CartState:
        if self._state is None:
            self._state = self._ctx.initial_state(self)
        return self._state

    def _read(self) -> CartState:
        return self.state

    def refresh(self) -> CartState:
        """Read the cart from the store now (and restart the sync window)."""
        self._state = self._ctx.load(self)
        return self._state

    def _wrote(self, state: CartState) -> CartState:
        view = self._ctx.catalog.reprice(state)
        self._state = view
        self._ctx.record(self.instance, view)
        return view

    def idempotent(self, key: str | None) -> None:
        """Apply the next change at most once per `key` and owner (an HTTP Idempotency-Key):
        a repeat of it while the cart remembers the key changes nothing."""
        self._idempotency_key = key

    def _next_op(self) -> str | None:
        key = self._idempotency_key
        if key is None:
            return None
        scoped = f"{self.identifier}\0{self.instance}\0{key}".encode()
        return hashlib.sha256(scoped).hexdigest()[:32]

    def _being_merged(self) -> bool:
        """True while this sealed guest cart is inside the grace of a login merge."""
        sealed_at = self.store.load(self.key).updated_at
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
                if not self._ctx.identity().is_guest:
                    raise
                if self._being_merged():
                    raise CartClosed(
                        "this cart is being merged into a customer's cart at a login: "
                        "reload and try again"
                    ) from None
                self._ctx.drop_guest_id()
                result = operation()
        finally:
            self._idempotency_key = None
        self._ctx.wrote(self, bool(result) if changed is None else changed)
        return result

    def _send(self, signal: Signal, **kwargs: Any) -> None:
        """Send `signal`, unless the change was a replay the store had applied before."""
        if self._state is not None and self._state.replayed:
            return
        self._ctx.send(signal, cart=self, **kwargs)

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
            self._wrote(self.store.add(self.key, line, owner=self.owner, limits=limits, op=op))

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
        self._send(
            signals.cart_item_added,
            product_id=line.product_id,
            quantity=line.quantity,
            line=self.get_product(line.product_id),
        )

    def update(self, product_id: str, quantity: int) -> None:
        self._change(lambda: Cart.update(self, product_id, quantity))
        if quantity == 0:
            self._send(signals.cart_item_removed, product_id=product_id)
        else:
            self._send(
                signals.cart_item_updated,
                product_id=product_id,
                quantity=quantity,
                line=self.get_product(product_id),
            )

    def remove(self, product_id: str) -> bool:
        removed: bool = self._change(lambda: Cart.remove(self, product_id), changed=None)
        if removed:
            self._send(signals.cart_item_removed, product_id=product_id)
        return removed

    def clear(self) -> None:
        self._change(lambda: Cart.clear(self))
        self._send(signals.cart_cleared)

    def destroy(self) -> None:
        Cart.destroy(self)
        self._ctx.forget(self.instance)

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
        return {**super().as_json(), "currency": self._ctx.settings.currency}

    def _still_orderable(self, state: CartState) -> bool:
        """Whether the stock still covers every line (checked at checkout, not in the token,
        so that showing a cart inside the sync window asks the product loader nothing)."""
        catalog = self._ctx.catalog
        if not catalog.available:
            return True
        for line in state.lines.values():
            stock = getattr(catalog.lookup(line.product_id), "stock", None)
            if stock is not None and line.quantity > stock:
                return False
        return True

    def _view(self, state: CartState) -> CartState:
        return self._ctx.catalog.reprice(state)

    def checkout(self, expect: str | None = None, *, session: Any = None) -> dict[str, Any]:
        """The final snapshot, re-priced; the cart leaves the store, the snapshot cookie and
        the guest cookie. Sends `cart_checked_out`. See `Cart.checkout` for `expect` (the
        `token` the customer reviewed) and `session`."""
        identity = self._ctx.identity()
        if identity.is_guest and not identity.issued:
            self._state = CartState()
            if expect is not None and expect != self.token:
                raise self._changed()
            result = snapshot(self.key, CartState())
        else:
            result = super().checkout(expect, session=session)
        self._state = CartState()
        self._ctx.forget(self.instance)
        if identity.is_guest:
            self._ctx.consume_guest_cookie()
        self._send(signals.cart_checked_out, snapshot=result)
        return result

    # -- what the HTTP routes call: prices and stock from the product loader ----------------

    def add_item(self, product_id: object, quantity: object = 1) -> None:
        """Add units of a catalogue product at its current price (404 unknown, 422 stock)."""
        product_id = check_product_id(product_id)
        quantity = check_quantity(quantity, self.limits)
        product = self._ctx.catalog.get(product_id)
        if product is None:
            raise UnknownProduct(f"unknown product {product_id!r}", product_id=product_id)
        extra = {} if product.name is None else {"name": product.name[:MAX_NAME_CHARS]}
        line = Line(product_id, quantity, money_str(product.unit_cost), extra)
        self._add_line(line, product.stock)

    def set_item(self, product_id: object, quantity: object) -> None:
        """Set a line's quantity (0 removes it), within the caps and the stock."""
        product_id = check_product_id(product_id)
        quantity = check_quantity(quantity, self.limits, allow_zero=True)
        if quantity > 0:
            product = self._ctx.catalog.get(product_id)
            if product is None:
                raise UnknownProduct(f"unknown product {product_id!r}", product_id=product_id)
            if product.stock is not None and quantity > product.stock:
                raise StockExceeded(
                    f"only {max(product.stock, 0)} of {product_id!r} in stock",
                    product_id=product_id,
                    limit=max(product.stock, 0),
                )
        self.update(product_id, quantity)

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
        entry = self._ctx.entry(self.instance)
        if entry is None or entry.identifier != self.identifier:
            return None
        return max(self._ctx.manager.clock() - entry.checked_at, 0.0)

    def stored(self) -> CartState:
        """The cart as the store holds it now, at the prices its lines were added at (one
        read; the request's cart and its sync window stay as they are)."""
        return self.store.load(self.key)
