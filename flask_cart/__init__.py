"""flask-cart: a shopping cart for Flask that is never lost."""

from . import signals
from .cart import Cart
from .errors import CartError
from .lines import CartState, Limits
from .manager import CartManager, current_cart

__all__ = ["Cart", "CartError", "CartManager", "CartState", "Limits", "current_cart", "signals"]
__version__ = "0.1.0"
