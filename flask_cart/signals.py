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

__all__ = [
    "cart_checked_out",
    "cart_cleared",
    "cart_item_added",
    "cart_item_removed",
    "cart_item_updated",
    "cart_merged",
]
