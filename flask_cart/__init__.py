"""flask-cart: a shopping cart for Flask that is never lost."""

from . import signals
from .cart import Cart
from .errors import (
    CartChanged,
    CartClosed,
    CartError,
    CrossSiteRequest,
    InvalidDetails,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidInstance,
    InvalidPrice,
    InvalidProductId,
    InvalidQuantity,
    LimitExceeded,
    LineLimitExceeded,
    LineNotFound,
    MalformedBody,
    NotANavigation,
    NotFound,
    ProductUnavailable,
    QuantityLimitExceeded,
    StockExceeded,
    StoreUnavailable,
    UnknownProduct,
)
from .lines import CartState, Limits
from .manager import CartManager, current_cart

__all__ = [
    "Cart",
    "CartChanged",
    "CartClosed",
    "CartError",
    "CartManager",
    "CartState",
    "CrossSiteRequest",
    "InvalidDetails",
    "InvalidIdempotencyKey",
    "InvalidInput",
    "InvalidInstance",
    "InvalidPrice",
    "InvalidProductId",
    "InvalidQuantity",
    "LimitExceeded",
    "Limits",
    "LineLimitExceeded",
    "LineNotFound",
    "MalformedBody",
    "NotANavigation",
    "NotFound",
    "ProductUnavailable",
    "QuantityLimitExceeded",
    "StockExceeded",
    "StoreUnavailable",
    "UnknownProduct",
    "current_cart",
    "signals",
]
__version__ = "0.1.0"
