"""flask-cart: a shopping cart for Flask that is never lost."""

from .cart import Cart
from .errors import CartError
from .lines import CartState, Limits

__all__ = ["Cart", "CartError", "CartState", "Limits"]
__version__ = "0.1.0"
