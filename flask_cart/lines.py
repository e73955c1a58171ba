"""Cart lines, input validation, and the pure rules that change lines.

Every store applies the same rules; the Redis store also mirrors the add and
set rules inside its Lua scripts so a change stays one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import (
    InvalidDetails,
    InvalidPrice,
    InvalidProductId,
    InvalidQuantity,
    LineLimitExceeded,
    LineNotFound,
    QuantityLimitExceeded,
)

MAX_PRODUCT_ID_LENGTH = 128
MAX_DETAILS_BYTES = 2048
MAX_UNIT_COST = Decimal(1000000000000)
#: A price has at most this many decimal places.
MAX_PRICE_PLACES = 6
#: Upper bounds of the caps: a quantity stays an exact integer in every store and script.
MAX_LINE_QUANTITY_CAP = 1_000_000_000
MAX_LINES_CAP = 10_000
MERGE_STRATEGIES = ("sum", "max", "guest", "customer")
#: Merge rules of cart links (not for CART_MERGE_STRATEGY): "add" sums, the link's price and
#: details winning as in an add; "replace" keeps only the link's lines, unless none fits.
LINK_STRATEGIES = ("add", "replace")
RESERVED_DETAILS = frozenset({"product_id", "quantity", "unit_cost"})


@dataclass(frozen=True)
class Limits:
    """Caps every change is checked against (each at most its ``MAX_..._CAP``)."""

    max_line_quantity: int = 999
    max_lines: int = 100

    def __post_init__(self) -> None:
        for name, bound in (
            ("max_line_quantity", MAX_LINE_QUANTITY_CAP),
            ("max_lines", MAX_LINES_CAP),
        ):
            value = getattr(self, name)
            if type(value) is not int or not 1 <= value <= bound:
                raise ValueError(f"{name} must be an int from 1 to {bound}, got {value!r}")


@dataclass(frozen=True)
class Owner:
    """Who a write belongs to: a customer id (None for a guest) and the lifetime it renews."""

    customer_id: str | None = None
    ttl: int = 604800


@dataclass(frozen=True)
class Line:
    """One line as stored: the price is a decimal string, never a float."""

    product_id: str
    quantity: int
    unit_cost: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        """The ecart-style details mapping: extras, `unit_cost` (Decimal) and `quantity`."""
        return {
            **self.extra,
            "unit_cost": Decimal(self.unit_cost),
            "quantity": self.quantity,
        }


@dataclass(frozen=True)
class CartState:
    """A cart as one store answer saw it. `version` 0 means the cart does not exist.

    `uid` is random and given when the cart is created: a cart deleted and made again
    gets a new one, even though its version count starts over.
    """

    lines: Mapping[str, Line] = field(default_factory=dict)
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    customer_id: str | None = None
    sealed: bool = False
    merged: frozenset[str] = frozenset()
    uid: str = ""
    #: True in the answer to a change the store had applied already (a resent op id):
    #: nothing was written this time.
    replayed: bool = False

    @property
    def exists(self) -> bool:
        return self.version > 0


@dataclass(frozen=True)
class MergeOutcome:
    """What a merge did: the new target state, unit changes per product, lines left out."""

    state: CartState
    moved: Mapping[str, int] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    already_merged: bool = False


_new = object.__new__


def make_line(product_id: str, quantity: int, unit_cost: str, extra: Mapping[str, Any]) -> Line:
    """``Line(product_id, quantity, unit_cost, extra)`` for fields already checked (as read
    from a store or a snapshot): the same frozen object, made without dataclass overhead."""
    line: Line = _new(Line)
    fields = line.__dict__
    fields["product_id"] = product_id
    fields["quantity"] = quantity
    fields["unit_cost"] = unit_cost
    fields["extra"] = extra
    return line


def with_lines(state: CartState, lines: Mapping[str, Line]) -> CartState:
    """``dataclasses.replace(state, lines=lines)`` without re-running the dataclass init."""
    new: CartState = _new(CartState)
    new.__dict__.update(state.__dict__)
    new.__dict__["lines"] = lines
    return new


def check_product_id(product_id: object) -> str:
    """A product id is a non-empty string of at most 128 printable characters."""
    if not isinstance(product_id, str) or not product_id:
        raise InvalidProductId("product_id must be a non-empty string")
    if len(product_id) > MAX_PRODUCT_ID_LENGTH:
        raise InvalidProductId(f"product_id is longer than {MAX_PRODUCT_ID_LENGTH} characters")
    if not product_id.isprintable():
        raise InvalidProductId("product_id contains control characters")
    return product_id


def check_quantity(quantity: object, limits: Limits, *, allow_zero: bool = False) -> int:
    """A quantity is a true int (not a bool or float) within 1 (or 0) .. the line cap."""
    if type(quantity) is not int:
        raise InvalidQuantity(f"quantity must be an integer, got {type(quantity).__name__}")
    low = 0 if allow_zero else 1
    if quantity < low:
        raise InvalidQuantity(f"quantity must be at least {low}")
    if quantity > limits.max_line_quantity:
        raise QuantityLimitExceeded(
            f"quantity is limited to {limits.max_line_quantity} per line",
            limit=limits.max_line_quantity,
        )
    return quantity


def parse_money(value: object) -> Decimal:
    """Decimal, int or decimal string to a finite, non-negative Decimal; floats are refused."""
    if type(value) is Decimal:  # the common case (a catalogue's price): no copy needed
        amount = value
        if not amount.is_finite() or amount < 0 or amount > MAX_UNIT_COST:
            raise InvalidPrice(f"unit_cost must be between 0 and {MAX_UNIT_COST}")
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_PRICE_PLACES:
            raise InvalidPrice(f"unit_cost has more than {MAX_PRICE_PLACES} decimal places")
        return amount.copy_abs() if amount.is_zero() else amount
    if isinstance(value, (bool, float)):
        raise InvalidPrice("unit_cost must be a Decimal, an int or a decimal string, not a float")
    if not isinstance(value, (Decimal, int, str)):
        raise InvalidPrice(f"unit_cost must be a Decimal, int or str, got {type(value).__name__}")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise InvalidPrice(f"unit_cost {value!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_UNIT_COST:
        raise InvalidPrice(f"unit_cost must be between 0 and {MAX_UNIT_COST}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PRICE_PLACES:
        raise InvalidPrice(f"unit_cost has more than {MAX_PRICE_PLACES} decimal places")
    return amount.copy_abs() if amount.is_zero() else amount  # "-0.00" is "0.00"


def money_str(amount: Decimal) -> str:
    """A Decimal as plain positional text ("9.99", never "9.99E+1")."""
    return format(amount, "f")


def check_details(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Extra line details must be JSON-serialisable, small, and not shadow line fields."""
    clash = RESERVED_DETAILS.intersection(extra)
    if clash:
        raise InvalidDetails(f"detail names reserved for the line: {', '.join(sorted(clash))}")
    try:
        text = json.dumps(dict(extra), allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidDetails(f"line details must be JSON-serialisable: {exc}") from None
    if not text.isascii():  # text UTF-8 cannot encode (a lone surrogate) becomes "?"
        text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text.encode()) > MAX_DETAILS_BYTES:
        raise InvalidDetails(f"line details are larger than {MAX_DETAILS_BYTES} bytes")
    decoded: dict[str, Any] = json.loads(text)
    return decoded


def check_strategy(strategy: object) -> str:
    if strategy not in MERGE_STRATEGIES:
        raise ValueError(f"merge strategy must be one of {MERGE_STRATEGIES}, got {strategy!r}")
    return str(strategy)


def apply_add(lines: Mapping[str, Line], new: Line, limits: Limits) -> dict[str, Line]:
    """Add `new.quantity` to a line; raise on a cap.

    The new price wins; new details replace the old ones, and none given keep them.
    """
    result = dict(lines)
    current = lines.get(new.product_id)
    if current is None:
        if len(lines) >= limits.max_lines:
            raise LineLimitExceeded(
                f"a cart holds at most {limits.max_lines} lines", limit=limits.max_lines
            )
        if new.quantity > limits.max_line_quantity:
            raise QuantityLimitExceeded(
                f"quantity is limited to {limits.max_line_quantity} per line",
                limit=limits.max_line_quantity,
                in_cart=0,
            )
        result[new.product_id] = new
        return result
    total = current.quantity + new.quantity
    if total > limits.max_line_quantity:
        raise QuantityLimitExceeded(
            f"quantity is limited to {limits.max_line_quantity} per line "
            f"({current.quantity} already in the cart)",
            limit=limits.max_line_quantity,
            in_cart=current.quantity,
        )
    extra = new.extra or current.extra
    result[new.product_id] = Line(new.product_id, total, new.unit_cost, extra)
    return result


def apply_set(
    lines: Mapping[str, Line], product_id: str, quantity: int, limits: Limits
) -> dict[str, Line]:
    """Set a line's quantity; 0 removes it; an absent line raises LineNotFound."""
    current = lines.get(product_id)
    if current is None:
        raise LineNotFound(f"product {product_id!r} is not in the cart", product_id=product_id)
    check_quantity(quantity, limits, allow_zero=True)
    result = dict(lines)
    if quantity == 0:
        del result[product_id]
    else:
        result[product_id] = Line(product_id, quantity, current.unit_cost, current.extra)
    return result


def apply_merge(
    target: Mapping[str, Line],
    source: Mapping[str, Line],
    strategy: str,
    limits: Limits,
    line_caps: Mapping[str, int] | None = None,
) -> tuple[dict[str, Line], dict[str, int], tuple[str, ...]]:
    """Merge `source` lines into `target`, clamped to the caps and to `line_caps` (stock).

    Returns the new lines, the unit change per product, and the source products left out
    (no room for another line, or nothing in stock).
    """
    caps = line_caps or {}
    if strategy == "replace":
        return _replace(target, source, limits, caps)
    result = dict(target)
    moved: dict[str, int] = {}
    dropped: list[str] = []
    for product_id, incoming in source.items():
        current = target.get(product_id)
        ceiling = min(limits.max_line_quantity, caps.get(product_id, limits.max_line_quantity))
        if current is None:
            quantity = min(incoming.quantity, ceiling)
            if quantity <= 0 or len(result) >= limits.max_lines:
                dropped.append(product_id)
                continue
            result[product_id] = Line(product_id, quantity, incoming.unit_cost, incoming.extra)
            moved[product_id] = quantity
            continue
        if strategy in ("sum", "add"):
            wanted = current.quantity + incoming.quantity
        elif strategy == "max":
            wanted = max(current.quantity, incoming.quantity)
        elif strategy == "guest":
            wanted = incoming.quantity
        else:
            wanted = current.quantity
        # Only units the guest adds are clamped: the customer's own line is never cut or
        # deleted by a merge (a "guest" merge may still lower it to the guest's quantity).
        if wanted > current.quantity:
            quantity = max(current.quantity, min(wanted, ceiling))
        else:
            quantity = wanted
        keep = incoming if strategy in ("guest", "add") else current
        result[product_id] = Line(product_id, quantity, keep.unit_cost, keep.extra)
        if quantity != current.quantity:
            moved[product_id] = quantity - current.quantity
    return result, moved, tuple(dropped)


def _replace(
    target: Mapping[str, Line], source: Mapping[str, Line], limits: Limits, caps: Mapping[str, int]
) -> tuple[dict[str, Line], dict[str, int], tuple[str, ...]]:
    """The "replace" merge: the source's lines (clamped) instead of the target's, in one write.

    When no source line fits (nothing in stock), the target is kept as it is: a replace never
    leaves a cart emptied of its lines with nothing in their place.
    """
    result: dict[str, Line] = {}
    moved: dict[str, int] = {}
    dropped: list[str] = []
    for product_id, incoming in source.items():
        ceiling = min(limits.max_line_quantity, caps.get(product_id, limits.max_line_quantity))
        quantity = min(incoming.quantity, ceiling)
        if quantity <= 0 or len(result) >= limits.max_lines:
            dropped.append(product_id)
            continue
        result[product_id] = Line(product_id, quantity, incoming.unit_cost, incoming.extra)
        moved[product_id] = quantity
    if not result:
        return dict(target), {}, tuple(dropped)
    return result, moved, tuple(dropped)


def lines_to_json(lines: Mapping[str, Line]) -> list[list[Any]]:
    """Lines as an ordered JSON list: [[product_id, quantity, unit_cost, extra], ...]."""
    return [[ln.product_id, ln.quantity, ln.unit_cost, dict(ln.extra)] for ln in lines.values()]


def lines_from_json(data: Any) -> dict[str, Line]:
    return {row[0]: make_line(row[0], int(row[1]), str(row[2]), row[3] or {}) for row in data or ()}
