"""`Cart`: a framework-agnostic cart with the method names of the ecart library."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .catalog import UNKNOWN_PRODUCT
from .errors import CartChanged, InvalidInput, LinesUnavailable
from .lines import (
    CartState,
    Limits,
    Line,
    Owner,
    check_details,
    check_product_id,
    check_quantity,
    check_strategy,
    money_str,
    parse_money,
)
from .stores.base import CartKey, CartStore, merge_marker
from .stores.registry import as_store
from .totals import is_available, line_json, priced_details, snapshot, state_total

__all__ = [
    "Cart",
    "is_available",
    "line_json",
    "new_line",
    "priced_details",
    "snapshot",
    "state_total",
]

DEFAULT_TTL = 604800
MAX_IDENTIFIER_LENGTH = 200
#: How often a checkout without `expect` re-reads a cart that changed between its check and
#: its removal before it gives up with CartChanged.
CHECKOUT_ATTEMPTS = 5


def _identifier(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput("a cart identifier must be a string or an int")
    text = str(value)
    if not text or len(text) > MAX_IDENTIFIER_LENGTH or not text.isprintable():
        raise InvalidInput(
            f"a cart identifier is 1 to {MAX_IDENTIFIER_LENGTH} printable characters"
        )
    return text


def _ttl(value: object) -> int:
    if type(value) is not int or value < 1:
        raise InvalidInput(f"ttl must be a positive number of seconds, got {value!r}")
    return value


class Cart:
    """One cart (an owner's `instance`) in a store.

    Every change is a single atomic operation on the store; reads go to the store unless
    the cart was given a known `state` to serve (as the Flask layer does inside its sync
    window). Dropping a Cart object never touches the store.
    """

    #: The currency's minor unit (Decimal("0.01")) money is shown in, or None: exact
    #: Decimal text, as stored (the plain cart, which knows no currency).
    _quantum: Decimal | None = None
    #: Further loader fields each JSON item carries (CART_LINE_FIELDS of the Flask cart).
    _line_fields: tuple[str, ...] = ()

    def __init__(
        self,
        identifier: str | int,
        store: CartStore | Any,
        ttl: int = DEFAULT_TTL,
        *,
        instance: str = "cart",
        customer_id: str | None = None,
        limits: Limits | None = None,
        state: CartState | None = None,
    ) -> None:
        self.key = CartKey(_identifier(identifier), _identifier(instance))
        self.store = as_store(store)
        self.ttl = _ttl(ttl)
        self.customer_id = customer_id
        self.limits = limits or Limits()
        self._state = state

    def __repr__(self) -> str:
        return f"<Cart {self.key.identifier!r} instance={self.key.instance!r}>"

    @property
    def identifier(self) -> str:
        return self.key.identifier

    @property
    def instance(self) -> str:
        return self.key.instance

    @property
    def owner(self) -> Owner:
        return Owner(self.customer_id, self.ttl)

    # -- state -----------------------------------------------------------------------

    @property
    def state(self) -> CartState:
        """The cart as last read or written (read from the store when not known yet)."""
        if self._state is None:
            self._state = self.store.load(self.key)
        return self._state

    def refresh(self) -> CartState:
        """Read the cart from the store now."""
        self._state = self.store.load(self.key)
        return self._state

    def _read(self) -> CartState:
        return self.state if self._state is not None and self._cached else self.refresh()

    _cached = False

    def serve_cached(self, state: CartState) -> None:
        """Serve reads from `state` (a fresh-enough copy) until the next change."""
        self._state = state
        self._cached = True

    def _keep_store_answer(self, state: CartState) -> CartState:
        """The store's answer to a change: the cart's state from now on."""
        self._state = state
        return state

    def _next_op(self) -> str | None:
        """The id of the next change; None lets the store make a new one."""
        return None

    @property
    def version(self) -> int:
        return self.state.version

    @property
    def token(self) -> str:
        """Opaque; names exactly the lines, quantities and prices held now. Pass it to
        ``checkout(expect=token)`` to take the cart only if it is still what was shown."""
        return self._token_of(self._read())

    def _token_of(self, state: CartState) -> str:
        return review_token(
            [
                [line.product_id, line.quantity, line.unit_cost, is_available(line)]
                for line in state.lines.values()
            ]
        )

    # -- ecart API: changes ------------------------------------------------------------

    def add(self, product_id: str, unit_cost: Any, quantity: int = 1, **extra: Any) -> None:
        """Add `quantity` units (default 1) to the product's line, creating it if new."""
        line = new_line(product_id, unit_cost, quantity, extra, self.limits)
        self._keep_store_answer(
            self.store.add(self.key, line, owner=self.owner, limits=self.limits, op=self._next_op())
        )

    def update(self, product_id: str, quantity: int) -> None:
        """Set the line's quantity; 0 removes it. A missing line raises LineNotFound."""
        check_product_id(product_id)
        check_quantity(quantity, self.limits, allow_zero=True)
        self._keep_store_answer(
            self.store.set_quantity(
                self.key,
                product_id,
                quantity,
                owner=self.owner,
                limits=self.limits,
                op=self._next_op(),
            )
        )

    def remove(self, product_id: str) -> bool:
        """Remove the product's line; False when it was not in the cart."""
        check_product_id(product_id)
        removed, state = self.store.remove(
            self.key, product_id, owner=self.owner, op=self._next_op()
        )
        self._keep_store_answer(state)
        return removed

    def clear(self) -> None:
        """Remove every line; the cart itself stays."""
        self._keep_store_answer(self.store.clear(self.key, owner=self.owner, op=self._next_op()))

    def destroy(self) -> None:
        """Delete the cart from the store."""
        self.store.delete(self.key)
        self._keep_store_answer(CartState())

    def set_ttl(self, seconds: int) -> bool:
        """Set the cart's remaining lifetime in seconds (False when there is no cart)."""
        return self.store.set_ttl(self.key, _ttl(seconds))

    def get_ttl(self) -> int:
        """Seconds until the cart expires (0 when there is no cart)."""
        return self.store.get_ttl(self.key)

    # -- ecart API: reads --------------------------------------------------------------

    def get(self) -> dict[str, dict[str, Any]]:
        """Every line: product id -> details (`unit_cost` as Decimal, `quantity`, extras)."""
        return {pid: line.details() for pid, line in self._read().lines.items()}

    def get_product(self, product_id: str) -> dict[str, Any]:
        """The line's details, or {} when the product is not in the cart."""
        line = self._read().lines.get(product_id)
        return line.details() if line else {}

    def contains(self, product_id: str) -> bool:
        return product_id in self._read().lines

    def count(self) -> int:
        """Distinct lines."""
        return len(self._read().lines)

    def quantity(self) -> int:
        """Total units."""
        return sum(line.quantity for line in self._read().lines.values())

    def total_cost(self) -> Decimal:
        """Sum of unit_cost x quantity over lines still available (with a currency: the sum
        of the line totals, each rounded half-up to the minor unit)."""
        return state_total(self._read(), self._quantum)

    # -- whole-cart operations -----------------------------------------------------------

    def copy(self, new_identifier: str | int) -> Cart:
        """A copy of this cart's lines at `new_identifier` (its former lines are replaced)."""
        target = Cart(
            new_identifier,
            self.store,
            self.ttl,
            instance=self.instance,
            customer_id=self.customer_id,
            limits=self.limits,
        )
        source = self.refresh()
        target.clear()
        if source.lines:
            outcome = self.store.merge(
                target.key,
                source.lines,
                strategy="guest",
                marker=f"copy:{merge_marker(self.key, source)}:{target.state.version}",
                owner=target.owner,
                limits=self.limits,
            )
            target._keep_store_answer(outcome.state)
        return target

    def merge(
        self,
        other: Cart,
        strategy: str = "sum",
        *,
        line_caps: dict[str, int] | None = None,
        tombstone: bool = False,
    ) -> dict[str, int]:
        """Merge `other` into this cart and delete `other`; returns units moved per product.

        `other` is sealed first, so it cannot change under the merge; the merge is recorded
        in this cart in the same write that applies it (with `other`'s change ids and link
        markers, on the same store), then `other` is deleted, or left as a short-lived
        tombstone naming this cart with `tombstone` (a login merge). Re-running after a crash
        at any point, or concurrently, applies the lines exactly once.
        """
        check_strategy(strategy)
        if other.key == self.key and other.store is self.store:
            raise InvalidInput("a cart cannot be merged into itself")
        sealed = other.store.seal(other.key)
        if not sealed.exists:
            return {}
        outcome = self.store.merge(
            self.key,
            sealed.lines,
            strategy=strategy,
            marker=merge_marker(other.key, sealed),
            owner=self.owner,
            limits=self.limits,
            line_caps=line_caps,
            carry=other.key if other.store is self.store else None,
        )
        self._keep_store_answer(outcome.state)
        if tombstone:
            other.store.bury(other.key, self.key)
        else:
            other.store.delete(other.key)
        other._keep_store_answer(CartState())
        return dict(outcome.moved)

    def checkout(self, expect: str | None = None, *, session: Any = None) -> dict[str, Any]:
        """The final snapshot of the cart; the cart is removed from the store.

        With `expect` (a `token`), the cart is taken only if it still is what that token
        names, in one atomic step with the removal; else CartChanged (409), nothing removed,
        its details the fresh cart. A cart holding a line that cannot be sold now raises
        LinesUnavailable (409), nothing removed (after CartChanged, when both apply); one
        the stock no longer covers (the Flask cart), CartChanged with the fresh cart, with
        or without `expect`. The cart checked is the cart taken: without `expect`, a cart
        that changed in between is checked again (a few times, then CartChanged).
        `session` (SQL store on that session's engine): the removal joins the session's
        transaction, committed or rolled back with the order; any other store raises
        TypeError before anything is read.
        """
        if session is not None:
            self._check_session(session)
        for _ in range(CHECKOUT_ATTEMPTS):
            fresh = self._checkout_state()
            if expect is not None and self._token_of(fresh) != expect:
                raise self._changed()
            unavailable = self._unavailable(fresh)
            if unavailable:
                raise LinesUnavailable(
                    "some lines in your cart cannot be sold now: remove them to check out",
                    product_ids=unavailable,
                )
            if not self._still_orderable(fresh):
                raise self._changed()
            state = self.store.take(self.key, expect=fresh, session=session)
            if (state.version, state.uid) == (fresh.version, fresh.uid):
                self._keep_store_answer(CartState())
                return snapshot(self.key, self._view(state), self._quantum)
            if expect is None and not fresh.exists:
                return snapshot(self.key, CartState(), self._quantum)  # made since: not taken
            self._keep_store_answer(state)
            if expect is not None:
                raise self._changed()
        raise self._changed()

    #: What `checkout(session=...)` says on a store that cannot join the session.
    _session_error = (
        "checkout(session=...) joins that session's SQL transaction and needs a SQL store "
        "on the session's engine"
    )

    def _check_session(self, session: Any) -> None:
        """TypeError unless this store's removal can run in `session`'s transaction."""
        engine = getattr(self.store, "engine", None)
        try:
            bind = session.get_bind()
        except Exception:  # not a SQLAlchemy session, or one bound to nothing
            bind = None
        if engine is None or getattr(bind, "url", None) != engine.url:
            raise TypeError(self._session_error)

    def _unavailable(self, state: CartState) -> list[str]:
        """Lines of `state` that checkout refuses (the Flask cart: those not priced now)."""
        return []

    def _checkout_state(self) -> CartState:
        """The cart as the store holds it now, as checkout checks it."""
        return self.refresh()

    def _still_orderable(self, state: CartState) -> bool:
        """Whether `state` can be ordered as it is (the Flask cart checks the stock)."""
        return True

    def _view(self, state: CartState) -> CartState:
        """The state as this cart shows it (the Flask cart re-prices it)."""
        return state

    def _changed(self) -> CartChanged:
        """CartChanged carrying the cart as it is now."""
        return CartChanged(
            "your cart changed since you reviewed it: please review it again", **self.as_json()
        )

    def as_json(self) -> dict[str, Any]:
        """The cart in the JSON form of ``GET /cart`` (without the app's currency)."""
        state = self._read()  # one read: items, totals and token describe the same cart
        rows, total, units, token = priced_rows(state, self._quantum)
        items = []
        fields = self._line_fields
        for line, unit_cost, line_total, available in rows:
            extra = line.extra
            name = extra.get("name")
            item = {
                "product_id": line.product_id,
                "name": None if name is None else str(name),
                "quantity": line.quantity,
                "unit_cost": unit_cost,
                "line_total": line_total,
                "price_changed": bool(extra.get("price_changed", False)),
                "available": available,
                "unavailable_reason": (
                    None if available else extra.get("unavailable_reason", UNKNOWN_PRODUCT)
                ),
            }
            for field in fields:
                item[field] = extra.get(field)
            items.append(item)
        return {
            "instance": self.instance,
            "items": items,
            "count": len(state.lines),
            "quantity": units,
            "total_cost": total,
            "updated_at": json_time(state.updated_at),
            "token": token,
        }


Row = tuple[Line, str, str, bool]


def priced_rows(state: CartState, unit: Decimal | None) -> tuple[list[Row], str, int, str]:
    """One pass over the lines for the JSON answer: each line with its unit cost and line
    total as shown (text; with `unit`, the minor unit, rounded half-up to it) and whether it
    is available; the total of the available lines (text), the units and the review token."""
    rows: list[Row] = []
    parts = []
    total = Decimal(0) if unit is None else unit * 0
    digits = None if unit is None else -int(unit.as_tuple().exponent)
    units = 0
    for line in state.lines.values():
        quantity = line.quantity
        available = line.extra.get("available", True) is not False  # is_available, inline
        unit_cost = line.unit_cost
        cost = Decimal(unit_cost)
        line_total = cost * quantity
        # A price already written to the minor unit (as the loader's prices usually are) and
        # its multiples need no rounding.
        if unit is not None and _decimals(unit_cost) != digits:
            unit_cost = format(cost.quantize(unit, ROUND_HALF_UP), "f")
            line_total = line_total.quantize(unit, ROUND_HALF_UP)
        if available:
            total += line_total
        units += quantity
        rows.append((line, unit_cost, format(line_total, "f"), available))
        parts.append([line.product_id, quantity, line.unit_cost, available])
    return rows, money_str(total), units, review_token(parts)


def json_time(moment: datetime | None) -> str | None:
    """`updated_at` as the JSON answer gives it: "2026-12-07T10:00:00Z" (None stays None)."""
    # as strftime("%Y-%m-%dT%H:%M:%SZ") writes it, at a third of the cost
    return None if moment is None else moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _decimals(text: str) -> int:
    """The decimal places of a plain decimal text ("9.99": 2, "12": 0)."""
    dot = text.find(".")
    return 0 if dot < 0 else len(text) - dot - 1


def review_token(parts: list[list[Any]]) -> str:
    """The token of the lines' [product_id, quantity, unit_cost, available] parts."""
    return hashlib.sha256(_token_json(parts).encode()).hexdigest()[:32]


#: json.dumps(..., separators=(",", ":"), sort_keys=True), its encoder built once.
_token_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def new_line(
    product_id: object, unit_cost: object, quantity: object, extra: dict[str, Any], limits: Limits
) -> Line:
    """A checked line to add: every field validated before the store is touched."""
    return Line(
        check_product_id(product_id),
        check_quantity(quantity, limits),
        money_str(parse_money(unit_cost)),
        check_details(extra),
    )
