"""Cart stores: the interface and its Redis and SQL implementations."""

from .base import CartKey, CartStore, as_store, store_from_name

__all__ = ["CartKey", "CartStore", "as_store", "store_from_name"]
