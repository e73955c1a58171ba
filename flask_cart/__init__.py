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
    InvalidLink,
    InvalidPrice,
    InvalidProductId,
    InvalidQuantity,
    LimitExceeded,
    LineLimitExceeded,
    LineNotFound,
    LinkExpired,
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
from .manager import CartManager, current_cart, store_unavailable_response
from .views import is_form_post

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
    "InvalidLink",
    "InvalidPrice",
    "InvalidProductId",
    "InvalidQuantity",
    "LimitExceeded",
    "Limits",
    "LineLimitExceeded",
    "LineNotFound",
    "LinkExpired",
    "MalformedBody",
    "NotANavigation",
    "NotFound",
    "ProductUnavailable",
    "QuantityLimitExceeded",
    "StockExceeded",
    "StoreUnavailable",
    "UnknownProduct",
    "current_cart",
    "is_form_post",
    "signals",
    "store_unavailable_response",
]
__version__ = "0.1.0"
