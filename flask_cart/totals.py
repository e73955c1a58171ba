"""The money of cart states: line totals, totals, checkout snapshots and JSON lines.

Without a minor unit (the plain `Cart`) money is exact Decimal text as stored; with one (the
Flask cart, from CART_CURRENCY) a line total is unit cost x quantity rounded half-up to it,
and a total is the sum of the rounded line totals of the lines still available.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .catalog import UNKNOWN_PRODUCT
from .lines import CartState, Line, money_str
from .money import round_money
from .stores.base import CartKey


def state_total(state: CartState, unit: Decimal | None = None) -> Decimal:
    """The sum of the available lines of a cart state (with `unit`, the currency's minor
    unit: the sum of the line totals, each rounded half-up to it)."""
    if unit is not None:
        return sum(
            (
                round_money(Decimal(ln.unit_cost) * ln.quantity, unit)
                for ln in state.lines.values()
                if is_available(ln)
            ),
            unit * 0,
        )
    return sum(
        (Decimal(ln.unit_cost) * ln.quantity for ln in state.lines.values() if is_available(ln)),
        Decimal(0),
    )


def snapshot(key: CartKey, state: CartState, unit: Decimal | None = None) -> dict[str, Any]:
    """A plain description of a cart state (for orders, logs and JSON).

    Its items are the lines that were priced (a line flagged unavailable is left out), each
    with its `line_total`; `total_cost` is the sum of those line totals. With `unit` (the
    currency's minor unit), money is rounded half-up to it.
    """
    items = {}
    total = Decimal(0) if unit is None else unit * 0
    units = 0
    for product_id, line in state.lines.items():
        if not is_available(line):
            continue
        details = priced_details(line, unit)
        items[product_id] = details
        total += details["line_total"]
        units += line.quantity
    return {
        "identifier": key.identifier,
        "instance": key.instance,
        "customer_id": state.customer_id,
        "version": state.version,
        "items": items,
        "count": len(items),
        "quantity": units,
        "total_cost": total,
        "updated_at": state.updated_at,
    }


def priced_details(line: Line, unit: Decimal | None) -> dict[str, Any]:
    """A line's details with its `line_total` (Decimal); with `unit` (the minor unit),
    `unit_cost` and `line_total` rounded half-up to it."""
    details = line.details()
    cost: Decimal = details["unit_cost"]
    line_total = cost * line.quantity
    if unit is not None:
        details["unit_cost"] = round_money(cost, unit)
        line_total = round_money(line_total, unit)
    details["line_total"] = line_total
    return details


def line_json(line: Line, unit: Decimal | None = None) -> dict[str, Any]:
    """One line in the JSON form of the cart routes (with `unit`, the currency's minor unit:
    money rounded half-up to it)."""
    name = line.extra.get("name")
    available = is_available(line)
    cost = Decimal(line.unit_cost)
    line_total = cost * line.quantity
    unit_cost = line.unit_cost
    if unit is not None:
        unit_cost = money_str(round_money(cost, unit))
        line_total = round_money(line_total, unit)
    return {
        "product_id": line.product_id,
        "name": None if name is None else str(name),
        "quantity": line.quantity,
        "unit_cost": unit_cost,
        "line_total": money_str(line_total),
        "price_changed": bool(line.extra.get("price_changed", False)),
        "available": available,
        "unavailable_reason": (
            None if available else line.extra.get("unavailable_reason", UNKNOWN_PRODUCT)
        ),
    }


def is_available(line: Line) -> bool:
    """False for a line re-pricing marked unavailable (it is left out of totals)."""
    return line.extra.get("available", True) is not False
