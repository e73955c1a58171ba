"""Cart links: URLs that add products to the cart of the browser that opens them.

- ``GET /cart/add/<product_id>?qty=N`` (N defaults to 1) and
  ``GET /cart/link/<product_id>:<qty>,<product_id>:<qty>...`` (split at each entry's last
  ``:``, so an id may hold ``:`` but not ``,``; at most ``min(100, CART_MAX_LINES)`` entries,
  each id once) for product pages, posts and ads;
- ``GET /cart/signed/<token>``: the signed links of :func:`cart_link` for e-mails and
  campaigns, optionally replacing the cart, optionally expiring.

A link adds in one atomic store write (the store's merge, recorded under a marker): stock
and the caps clamp what it adds. What it added is flashed (``cart-success``, by the
loader's product names); what they clamped, or what is unknown, sold out or unavailable,
is flashed (``cart-warning``; an unknown id is counted, never shown) and sent with
``cart_link_followed``. A signed
link's marker is its token, so it is applied once per cart (a double click or a mail
scanner's second fetch adds nothing). Only a navigation a person started follows a link
(flask_cart.navigation); others get a confirmation page whose button posts a signed
single-use token (an unsigned link followed from it is recorded under that token's nonce,
so it is applied once). Then the answer is a 303 to a same-site ``next`` or to
CART_LINK_REDIRECT. Input that cannot be followed is a 400 (a signed link past its expiry
410) before anything else, and changes nothing; a navigation gets it as a flashed
``cart-error`` and the same 303 (flask_cart.shopper).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import current_app, flash, has_request_context, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.routing import BuildError

from . import signals
from .catalog import UNKNOWN_PRODUCT, Unavailable
from .config import valid_redirect
from .context import request_carts
from .errors import CartError, InvalidLink, InvalidQuantity
from .lines import MAX_LINE_QUANTITY_CAP, Line, MergeOutcome, check_product_id, money_str
from .navigation import Follow, follow_or_confirm
from .request_cart import MAX_NAME_CHARS, RequestCart
from .shopper import landing, plural
from .stores.base import new_op_id
from .tokens import MAX_TOKEN_LENGTH, make_token, read_token
from .views import SAFE_METHODS, blueprint, idempotency_key

if TYPE_CHECKING:
    from .manager import CartManager

#: The most products one link names (and never more than CART_MAX_LINES).
MAX_LINK_ITEMS = 100
TOKEN_PURPOSE = "cart-link"
#: The marker of a link followed from its confirmation page: the confirmation's nonce.
CONFIRM_MARKER_PREFIX = "confirm:"
_UNITS = re.compile(r"[0-9]{1,10}", re.ASCII)

Entries = list[tuple[str, int]]


# -- input -----------------------------------------------------------------------------------


def parse_units(raw: str) -> int:
    """A link's quantity: ASCII digits, 1 to 1,000,000,000 (the caps clamp it further)."""
    if not _UNITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LINE_QUANTITY_CAP:
        raise InvalidQuantity(
            f"The quantity in a cart link is a whole number from 1 to {MAX_LINE_QUANTITY_CAP:,}."
        )
    return int(raw)


def parse_list(text: str, max_items: int) -> Entries:
    """``id:qty,id:qty...`` as entries; InvalidLink for an empty entry, too many or a
    repeated id."""
    entries: Entries = []
    for part in text.split(","):
        product_id, colon, units = part.rpartition(":")
        if not colon or not product_id:
            raise InvalidLink("This cart link is not valid: each product comes with a quantity.")
        entries.append((check_product_id(product_id), parse_units(units)))
    return check_entries(entries, max_items)


def check_entries(entries: Entries, max_items: int) -> Entries:
    if not entries:
        raise InvalidLink("This cart link names no product.")
    if len(entries) > max_items:
        raise InvalidLink(f"A cart link names at most {max_items} products.")
    seen: set[str] = set()
    for product_id, _ in entries:
        if product_id in seen:
            raise InvalidLink("This cart link names a product twice.")
        seen.add(product_id)
    return entries


def _max_items() -> int:
    return min(MAX_LINK_ITEMS, request_carts().settings.limits.max_lines)


# -- the routes ------------------------------------------------------------------------------


@blueprint.route("/add/<path:product_id>", methods=["GET", "POST"])
def add_link(product_id: str) -> ResponseReturnValue:
    """Add ``?qty=`` (default 1) units of the product, then 303 to ``next``."""
    product_id = check_product_id(product_id)
    raw = request.args.getlist("qty")
    if len(raw) > 1:
        raise InvalidQuantity("Give the quantity (qty) once.")
    entries = [(product_id, parse_units(raw[0]) if raw else 1)]
    return _follow(entries, _link_cart(request.args.get("instance", "cart")))


@blueprint.route("/link/<path:items>", methods=["GET", "POST"])
def list_link(items: str) -> ResponseReturnValue:
    """Add every ``<product_id>:<qty>`` of the comma-separated list, then 303 to ``next``."""
    if "qty" in request.args:
        raise InvalidLink("This cart link gives each quantity after its product, not in qty.")
    entries = parse_list(items, _max_items())
    return _follow(entries, _link_cart(request.args.get("instance", "cart")))


@blueprint.route("/signed/<token>", methods=["GET", "POST"])
def signed_link(token: str) -> ResponseReturnValue:
    """Follow a link made by :func:`cart_link`: once per cart; 400 tampered, 410 expired."""
    data = read_token(current_app, TOKEN_PURPOSE, token)
    entries, replace, instance = _token_data(data)
    asked = request.args.get("instance")
    if asked is not None and asked != instance:
        raise InvalidLink("This link is for another of your carts.")
    marker = "link:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return _follow(entries, _link_cart(instance), replace=replace, marker=marker)


def _token_data(data: Any) -> tuple[Entries, bool, str]:
    """The entries, replace flag and instance a token carries (InvalidLink if malformed)."""
    try:
        rows, replace, instance = data["i"], data["r"], data["n"]
        entries = [(check_product_id(pid), units) for pid, units in rows]
    except (TypeError, KeyError, ValueError, CartError):
        raise InvalidLink("This link is not valid.") from None
    if not all(type(u) is int and 1 <= u <= MAX_LINE_QUANTITY_CAP for _, u in entries):
        raise InvalidLink("This link is not valid.")
    if type(replace) is not bool or not isinstance(instance, str):
        raise InvalidLink("This link is not valid.")
    return check_entries(entries, MAX_LINK_ITEMS), replace, instance


def _link_cart(instance: str) -> RequestCart:
    cart = request_carts().cart(instance)
    if request.method not in SAFE_METHODS:
        cart.idempotent(idempotency_key())
    return cart


def _follow(
    entries: Entries, cart: RequestCart, *, replace: bool = False, marker: str | None = None
) -> ResponseReturnValue:
    """Ask for a click unless this is a top-level navigation (or the page's POST); then
    apply the link, flash and signal what it could not add, and 303 to where it lands."""
    follow = follow_or_confirm(*_wording(cart, entries, replace), _page_lines(cart, entries))
    if not isinstance(follow, Follow):
        return follow
    if marker is None and follow.nonce is not None:  # the confirmation is used once
        marker = CONFIRM_MARKER_PREFIX + follow.nonce
    result = apply_link(cart, entries, replace=replace, marker=marker)
    if result["added"]:
        flash(_added_message(cart, result["added"], replace), "cart-success")
    for message in _warning_flashes(result["warnings"]):
        flash(message, "cart-warning")
    if not result["replayed"]:
        request_carts().send(
            signals.cart_link_followed,
            cart=cart,
            added=result["added"],
            warnings=result["warnings"],
            replace=replace,
            signed=marker is not None,
        )
    return redirect(landing(), code=303)


def _wording(cart: RequestCart, entries: Entries, replace: bool) -> tuple[str, str]:
    """The confirmation page's title and button."""
    if replace:
        return f"Replace your cart with {_describe(cart, entries)}?", "Replace my cart"
    return f"Add {_describe(cart, entries)} to your cart?", "Add to cart"


def _describe(cart: RequestCart, entries: Entries) -> str:
    if len(entries) > 1:
        return plural(len(entries), "product")
    product_id, units = entries[0]
    return _units_of(units, _name(cart, product_id, "a product"))


def _page_lines(cart: RequestCart, entries: Entries) -> list[dict[str, Any]] | None:
    """The confirmation page's list of what a link of several products brings (known
    products only: an id from the URL is never shown)."""
    if len(entries) < 2:
        return None
    known = [(pid, units) for pid, units in entries if _name(cart, pid, "")]
    return [{"name": _name(cart, pid), "quantity": units} for pid, units in known] or None


def _units_of(units: int, name: str) -> str:
    return f"{units} \N{MULTIPLICATION SIGN} {name}"


def _name(cart: RequestCart, product_id: str, default: str = "This item") -> str:
    """The loader's name of the product, else `default`: an id from a URL is never shown."""
    product = request_carts().catalog.lookup(product_id)
    name = None if isinstance(product, Unavailable) else product.name
    return name[:MAX_NAME_CHARS] if name else default


def _added_message(cart: RequestCart, added: dict[str, int], replace: bool) -> str:
    """The success flash, "Added 2 (times) Mug to your cart." (at most three products named,
    else a count of the items)."""
    if len(added) <= 3:
        named = [_units_of(units, _name(cart, pid, "an item")) for pid, units in added.items()]
        listing = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    else:
        listing = plural(sum(added.values()), "item")
    if replace:
        return f"Your cart now holds {listing}."
    return f"Added {listing} to your cart."


def _warning_flashes(warnings: list[dict[str, Any]]) -> list[str]:
    """The warnings as flashed: one line counting the products that are not available."""
    gone = sum(1 for w in warnings if w["reason"] in ("unknown", "unavailable"))
    messages = [w["message"] for w in warnings if w["reason"] not in ("unknown", "unavailable")]
    if gone:
        verb = "is" if gone == 1 else "are"
        messages.insert(0, f"{plural(gone, 'product')} in this link {verb} no longer available.")
    return messages


# -- applying a link -------------------------------------------------------------------------


def apply_link(
    cart: RequestCart, entries: Entries, *, replace: bool = False, marker: str | None = None
) -> dict[str, Any]:
    """Add (or with `replace`, put instead of the cart's lines) the entries in one store
    merge, once per `marker` (a new marker when None; an Idempotency-Key's when the request
    has one). Returns ``added`` (product -> units), ``warnings`` (in link order) and
    ``replayed`` (the marker had been applied: nothing changed, no signal)."""
    catalog = request_carts().catalog
    source: dict[str, Line] = {}
    caps: dict[str, int] = {}
    notes: dict[str, dict[str, Any]] = {}
    for product_id, units in entries:
        product = catalog.lookup(product_id)
        if isinstance(product, Unavailable):
            reason = "unknown" if product.reason == UNKNOWN_PRODUCT else "unavailable"
            notes[product_id] = _warning(cart, product_id, reason, units)
            continue
        if product.stock is not None:
            if product.stock <= 0:
                notes[product_id] = _warning(cart, product_id, "sold_out", units)
                continue
            caps[product_id] = product.stock
        extra = {} if product.name is None else {"name": product.name[:MAX_NAME_CHARS]}
        source[product_id] = Line(product_id, units, money_str(product.unit_cost), extra)
    if not source:  # nothing to add: the cart is not touched (a replace keeps it too)
        cart.idempotent(None)
        return {"added": {}, "warnings": _ordered(entries, notes), "replayed": False}

    def merge(key_op: str | None) -> MergeOutcome:
        return cart.store.merge(
            cart.key,
            source,
            strategy="replace" if replace else "add",
            marker=marker or "link:" + (key_op or new_op_id()),
            owner=cart.owner,
            limits=cart.limits,
            line_caps=caps,
        )

    outcome = cart.run_store_merge(merge)
    if outcome.already_merged:
        message = "This link was added to your cart already."
        replay = {"product_id": None, "reason": "already_added", "requested": 0, "added": 0,
                  "message": message}  # fmt: skip
        return {"added": {}, "warnings": [replay], "replayed": True}
    added = {pid: units for pid, units in outcome.moved.items() if units > 0}
    limits = cart.limits
    for product_id, line in source.items():
        got = added.get(product_id, 0)
        if product_id in outcome.dropped:
            notes[product_id] = _warning(cart, product_id, "no_room", line.quantity)
        elif got < line.quantity:
            held = outcome.state.lines[product_id].quantity
            stock = caps.get(product_id)
            name = _name(cart, product_id)
            why = (
                f"Only {stock} of {name} in stock: your cart has {held}."
                if stock is not None and held >= stock and stock < limits.max_line_quantity
                else f"You can have at most {limits.max_line_quantity} of one item: your cart "
                f"has {_units_of(held, name)}."
            )
            notes[product_id] = _warning(cart, product_id, "clamped", line.quantity, got, why)
    if replace:
        cart.send_unless_replayed(signals.cart_cleared)
    for product_id, units in added.items():
        cart.send_unless_replayed(
            signals.cart_item_added,
            product_id=product_id,
            quantity=units,
            line_of=product_id,
        )
    return {"added": added, "warnings": _ordered(entries, notes), "replayed": False}


def _ordered(entries: Entries, notes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [notes[pid] for pid, _ in entries if pid in notes]


def _warning(
    cart: RequestCart, product_id: str, reason: str, requested: int, added: int = 0, why: str = ""
) -> dict[str, Any]:
    """What a link could not add: product_id, reason, requested, added and the message
    (shopper copy: an unknown id is never repeated)."""
    name = "" if reason in ("unknown", "unavailable") else _name(cart, product_id)
    room = plural(cart.limits.max_lines, "different item")
    messages = {
        "unknown": "A product in this link is no longer available, so it was not added.",
        "unavailable": "A product in this link cannot be bought right now, so it was not added.",
        "sold_out": f"{name} is sold out, so it was not added.",
        "no_room": f"{name} was not added: your cart can hold at most {room}.",
        "clamped": why,
    }
    return {
        "product_id": product_id,
        "reason": reason,
        "requested": requested,
        "added": added,
        "message": messages[reason],
    }


# -- signed links ----------------------------------------------------------------------------


def cart_link(
    manager: CartManager,
    items: Mapping[str, int],
    *,
    replace: bool = False,
    max_age: float | None = None,
    instance: str = "cart",
) -> str:
    """A signed absolute URL (``/cart/signed/<token>``) adding `items` once per cart.

    The host is the request's, else SERVER_NAME's (with PREFERRED_URL_SCHEME); without
    either a RuntimeError says so. Items are checked as links check them, `max_age` is a
    finite positive number of seconds or None, and a token longer than the route reads
    (MAX_TOKEN_LENGTH characters) is refused: all ValueError.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = manager.settings(app)
    if instance not in settings.instances:
        raise ValueError(f"unknown cart instance {instance!r}")
    if not isinstance(items, Mapping):
        raise TypeError("items must be a mapping of product id -> units")
    try:
        entries = [(check_product_id(pid), _units(units)) for pid, units in items.items()]
        check_entries(entries, min(MAX_LINK_ITEMS, settings.limits.max_lines))
    except CartError as exc:
        raise ValueError(exc.message) from None
    data = {"i": [list(entry) for entry in entries], "r": bool(replace), "n": instance}
    token = make_token(app, TOKEN_PURPOSE, data, max_age)
    if len(token) > MAX_TOKEN_LENGTH:  # the route would refuse it: say so now
        raise ValueError(
            f"these items make a link token of {len(token)} characters; the link route reads "
            f"at most {MAX_TOKEN_LENGTH}: use fewer products or shorter product ids"
        )
    if not has_request_context() and not app.config.get("SERVER_NAME"):
        raise RuntimeError(
            "carts.cart_link() outside a request needs SERVER_NAME (and PREFERRED_URL_SCHEME) "
            "to say the shop's host"
        )
    try:
        return url_for("flask_cart.signed_link", token=token, _external=True)
    except BuildError:
        raise RuntimeError("cart links need the cart routes (CART_BLUEPRINT = True)") from None


def _units(units: object) -> int:
    if type(units) is not int or not 1 <= units <= MAX_LINE_QUANTITY_CAP:
        raise InvalidQuantity(f"units must be an int from 1 to {MAX_LINE_QUANTITY_CAP}")
    return units


__all__ = [
    "MAX_LINK_ITEMS",
    "apply_link",
    "cart_link",
    "parse_list",
    "parse_units",
    "valid_redirect",
]
