"""Cart stores: the interface (base), the built-in stores and the name registry."""

from .base import CartKey, CartStore
from .registry import as_store, store_class

__all__ = ["CartKey", "CartStore", "as_store", "store_class"]
