"""Blinker signals sent by flask-cart; the sender is always the Flask app.

Keyword arguments:

- ``cart_item_added``: ``cart``, ``product_id``, ``quantity`` (units added), ``line``
  (the line's details after the change).
- ``cart_item_updated``: ``cart``, ``product_id``, ``quantity`` (the new quantity), ``line``.
- ``cart_item_removed``: ``cart``, ``product_id``.
- ``cart_cleared``: ``cart``.
- ``cart_merged``: ``cart`` (the customer's), ``user``, ``moved`` (product -> units the
  merge changed; {} when a retried merge found its work done), ``dropped`` (guest products
  left out of the customer's cart: no room, no stock). Sent once per instance that had a
  guest cart; handy for a flash message after login.
- ``cart_checked_out``: ``cart``, ``snapshot`` (what ``checkout()`` returned).
- ``cart_link_followed``: ``cart``, ``added`` (product -> units added), ``warnings`` (what
  was clamped, unknown or sold out, as flashed: dicts of ``product_id``, ``reason`` (one of
  clamped, unknown, unavailable, sold_out, no_room), ``requested``, ``added``,
  ``message``), ``replace`` and ``signed`` (bools). Not sent again when a signed link
  already applied to this cart is followed again.
- ``cart_abandoned``: ``identifier``, ``instance``, ``customer_id`` (None for guests),
  ``stage`` (its label, e.g. ``"24h"``), ``snapshot`` (as ``checkout()`` returns it),
  ``recovery_url`` (None for a cart no link can name), ``report_id`` (stable for that
  cart, stage and version: receivers can de-duplicate on it); sent by
  ``flask cart abandoned``, once per cart and stage until the cart changes.
- ``cart_recovered``: ``cart`` (the browser's cart now), ``identifier`` (the recovered
  cart's), ``instance``, ``moved`` (product -> units the merge changed; {} for a customer's
  own cart). Sent once per recovery link that gave a browser a cart.
- ``cart_unsubscribed(app, identifier, instance)``: reminders were stopped for that cart
  (its unsubscribe link confirmed, or a one-click POST per RFC 8058).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

cart_item_added = _signals.signal("cart-item-added")
cart_item_updated = _signals.signal("cart-item-updated")
cart_item_removed = _signals.signal("cart-item-removed")
cart_cleared = _signals.signal("cart-cleared")
cart_merged = _signals.signal("cart-merged")
cart_checked_out = _signals.signal("cart-checked-out")
cart_link_followed = _signals.signal("cart-link-followed")
cart_abandoned = _signals.signal("cart-abandoned")
cart_recovered = _signals.signal("cart-recovered")
cart_unsubscribed = _signals.signal("cart-unsubscribed")

__all__ = [
    "cart_abandoned",
    "cart_checked_out",
    "cart_cleared",
    "cart_item_added",
    "cart_item_removed",
    "cart_item_updated",
    "cart_link_followed",
    "cart_merged",
    "cart_recovered",
    "cart_unsubscribed",
]
