"""The cart routes' JSON answer, written as text in one pass over the cart's lines.

The text is byte for byte what ``jsonify(cart.as_json())`` gives under Flask's default JSON
provider (sorted keys, compact separators, a trailing newline), without building the
answer's dicts first and encoding them after. An app with another JSON provider, one that
pretty-prints (``app.debug``) or keeps keys unsorted, or with CART_LINE_FIELDS, gets
``app.json.response(cart.as_json())`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider

from .cart import json_time, review_token
from .catalog import UNKNOWN_PRODUCT

if TYPE_CHECKING:
    from .lines import CartState

Escape = Callable[[str], str]


def writes_default_json(app: Flask) -> bool:
    """Whether `app` answers JSON as Flask's own default provider does, compactly."""
    provider = app.json
    if type(provider) is not DefaultJSONProvider or not provider.sort_keys:
        return False
    compact = provider.compact
    return compact is True or (compact is None and not app.debug)


def json_response(
    app: Flask,
    state: CartState,
    *,
    instance: str,
    currency: str,
    unit: Decimal | None,
) -> Response:
    """The answer of a cart route for `state` (call only where `writes_default_json`)."""
    provider: Any = app.json  # DefaultJSONProvider (see writes_default_json)
    escape: Escape = encode_basestring_ascii if provider.ensure_ascii else encode_basestring
    items, parts = [], []
    total = Decimal(0) if unit is None else unit * 0
    digits = None if unit is None else -int(unit.as_tuple().exponent)
    units = 0
    for line in state.lines.values():  # the money as cart.priced_rows gives it
        extra = line.extra
        quantity = line.quantity
        available = extra.get("available", True) is not False
        unit_cost = stored = line.unit_cost
        cost = Decimal(unit_cost)
        line_total = cost * quantity
        dot = unit_cost.find(".")
        if unit is not None and (0 if dot < 0 else len(unit_cost) - dot - 1) != digits:
            unit_cost = format(cost.quantize(unit, ROUND_HALF_UP), "f")
            line_total = line_total.quantize(unit, ROUND_HALF_UP)
        if available:
            total += line_total
        units += quantity
        parts.append([line.product_id, quantity, stored, available])
        name = extra.get("name")
        reason = None if available else extra.get("unavailable_reason", UNKNOWN_PRODUCT)
        items.append(
            f'{{"available":{"true" if available else "false"},'
            f'"line_total":{escape(format(line_total, "f"))},'
            f'"name":{"null" if name is None else escape(str(name))},'
            f'"price_changed":{"true" if extra.get("price_changed", False) else "false"},'
            f'"product_id":{escape(line.product_id)},'
            f'"quantity":{quantity},'
            f'"unavailable_reason":{_value(provider, escape, reason)},'
            f'"unit_cost":{escape(unit_cost)}}}'
        )
    token = review_token(parts)
    updated = json_time(state.updated_at)
    text = (
        f'{{"count":{len(state.lines)},"currency":{escape(currency)},'
        f'"instance":{escape(instance)},"items":[{",".join(items)}],"quantity":{units},'
        f'"token":{escape(token)},"total_cost":{escape(format(total, "f"))},'
        f'"updated_at":{"null" if updated is None else escape(updated)}}}\n'
    )
    return app.response_class(text, mimetype=provider.mimetype)


def _value(provider: Any, escape: Escape, value: Any) -> str:
    """A JSON value as the provider writes it (None and text without a call)."""
    if value is None:
        return "null"
    if type(value) is str:
        return escape(value)
    text: str = provider.dumps(value, separators=(",", ":"))
    return text


__all__ = ["json_response", "writes_default_json"]
