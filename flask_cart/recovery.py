"""Recovery links: ``carts.recovery_url(...)`` and ``GET /cart/recover/<token>``.

A recovery URL carries a signed token (purpose ``recover``) naming one stored cart: a guest
cart (``{"guest": <uuid>, "instance": ...}``) or a customer's (``{"customer": <user id>,
"instance": ...}``). Opening it in a browser gives that browser the cart.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, has_request_context, redirect, url_for
from flask.typing import ResponseReturnValue

from .errors import InvalidInput, InvalidInstance
from .identity import is_guest_id
from .tokens import make_token, read_token
from .views import blueprint

PURPOSE = "recover"
CUSTOMER_PREFIX = "customer:"
DEFAULT_MAX_AGE = 7 * 86400
ENDPOINT = "flask_cart.recover_cart"


def recovery_payload(identifier: object, instance: str) -> dict[str, str]:
    """The token's data for the store's cart `identifier`: a guest id or ``customer:<id>``."""
    if isinstance(identifier, str) and is_guest_id(identifier):
        return {"guest": identifier, "instance": instance}
    if isinstance(identifier, str) and identifier.startswith(CUSTOMER_PREFIX):
        customer_id = identifier[len(CUSTOMER_PREFIX) :]
        if customer_id and customer_id.isprintable():
            return {"customer": customer_id, "instance": instance}
    raise InvalidInput(
        f"{identifier!r} is not a cart identifier: a guest id or 'customer:<user id>'"
    )


def recovery_url(
    manager: Any,
    identifier: str,
    instance: str = "cart",
    max_age: float | timedelta | None = DEFAULT_MAX_AGE,
) -> str:
    """A signed absolute URL that gives the cart `identifier` of `instance` to the browser
    that opens it, valid for `max_age` (seconds or a timedelta; None: no expiry).

    Inside a request the URL names the request's host; outside one (the CLI) it needs
    ``SERVER_NAME`` (and ``PREFERRED_URL_SCHEME``).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = manager.settings(app)
    if instance not in settings.instances:
        raise InvalidInstance(
            f"unknown cart instance {instance!r}; one of: {', '.join(settings.instances)}"
        )
    if isinstance(max_age, timedelta):
        max_age = max_age.total_seconds()
    token = make_token(app, PURPOSE, recovery_payload(identifier, instance), max_age)
    if not has_request_context() and not app.config.get("SERVER_NAME"):
        raise RuntimeError(
            "recovery_url outside a request needs the shop's host: set SERVER_NAME "
            "(and PREFERRED_URL_SCHEME) in the app's config"
        )
    return url_for(ENDPOINT, token=token, _external=True)


@blueprint.route("/recover/<path:token>", methods=["GET", "POST"])
def recover_cart(token: str) -> ResponseReturnValue:
    """Give this browser the cart the recovery token names."""
    read_token(current_app, PURPOSE, token)
    return redirect("/", code=303)


__all__ = ["recovery_payload", "recovery_url"]
