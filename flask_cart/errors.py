"""Cart errors: each carries the JSON error code and HTTP status it maps to."""

from __future__ import annotations


class CartError(Exception):
    """Base class of every error flask-cart raises on purpose."""

    code = "cart_error"
    status = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON error body: ``{"error": {"code": ..., "message": ...}}``. `details` stay
        server-side (a shop's handler may show them)."""
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(CartError):
    """Malformed input: a bad quantity, product id, price or detail (400)."""

    code = "invalid_input"
    status = 400


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"


class InvalidProductId(InvalidInput):
    code = "invalid_product_id"


class InvalidPrice(InvalidInput):
    code = "invalid_price"


class InvalidDetails(InvalidInput):
    code = "invalid_details"


class InvalidInstance(InvalidInput):
    code = "invalid_instance"


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"


class MalformedBody(InvalidInput):
    """A body that is not a JSON object or a form, or is larger than 16 KB (400)."""

    code = "malformed_body"


class CrossSiteRequest(CartError):
    """A change asked for by another site (403); nothing was changed."""

    code = "cross_site"
    status = 403


class NotANavigation(CartError):
    """A cart link fetched by something other than a top-level navigation: an image,
    script, frame or fetch (403); nothing was changed."""

    code = "navigation_required"
    status = 403


class ConfirmationRequired(NotANavigation):
    """A cart link or recovery link posted without a valid confirmation token (the one its
    confirmation page carries, single-use, for 10 minutes) (403); nothing was changed."""

    code = "confirmation_required"


class InvalidLink(CartError):
    """A signed cart or recovery link that was tampered with or is malformed (400)."""

    code = "invalid_link"
    status = 400


class LinkExpired(CartError):
    """A signed cart or recovery link past its expiry (410); nothing was changed."""

    code = "link_expired"
    status = 410


class LoginRequired(CartError):
    """A customer's recovery link opened without a login view to send the browser to (401)."""

    code = "login_required"
    status = 401


class NotFound(CartError):
    """An unknown product or a line that is not in the cart (404)."""

    code = "not_found"
    status = 404


class LineNotFound(NotFound):
    code = "line_not_found"


class UnknownProduct(NotFound):
    code = "unknown_product"


class LimitExceeded(CartError):
    """A change that would pass a cap or the stock (422); nothing was changed."""

    code = "limit_exceeded"
    status = 422


class QuantityLimitExceeded(LimitExceeded):
    code = "quantity_limit"


class LineLimitExceeded(LimitExceeded):
    code = "line_limit"


class StockExceeded(LimitExceeded):
    code = "insufficient_stock"


class ProductUnavailable(CartError):
    """The product loader failed, or described the product with unusable data (422).

    `details` holds `product_id` and `reason` ("bad_product_data" or "loader_error").
    """

    code = "product_unavailable"
    status = 422


class CartClosed(CartError):
    """The cart was merged away or is being merged; it takes no more changes (409)."""

    code = "cart_closed"
    status = 409


class IdempotencyKeyReused(CartError):
    """An Idempotency-Key already used for another change of this cart (422); nothing was
    changed."""

    code = "idempotency_key_reused"
    status = 422


class CartChanged(CartError):
    """The cart is no longer what the customer reviewed (409); nothing was removed.

    `details` holds the fresh cart, in the JSON form of ``GET /cart``."""

    code = "cart_changed"
    status = 409


class LinesUnavailable(CartError):
    """The cart holds lines the catalogue cannot sell now (409); nothing was removed.

    `details["product_ids"]` lists them; ``current_cart.remove_unavailable()`` drops them."""

    code = "lines_unavailable"
    status = 409


class StoreUnavailable(CartError):
    """The store did not answer in time or refused the connection (503)."""

    code = "store_unavailable"
    status = 503
