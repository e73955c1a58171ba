"""Recovery links: ``carts.recovery_url(...)`` and ``GET /cart/recover/<token>``.

A recovery URL carries a signed token (purpose ``recover``, so no other token passes)
naming one stored cart: a guest cart (``{"guest": <uuid>, "instance": ...}``) or a
customer's (``{"customer": <user id>, "instance": ...}``). Opening it gives that cart to the
browser, on a top-level navigation only (flask_cart.navigation).

A guest cart goes to exactly one browser, once, on every store, with the store's own
merge. Each browser first merges an empty claim marker (``recover:<its cart id>``) into the
guest cart, then seals it; the seal freezes the set of claims (a sealed cart takes no more
merges), so every browser reads the same set and the first claim in sort order wins. Only
the winner merges the sealed lines into its cart, under the merge marker of that sealed
state (applied once however often it is retried), and then deletes the guest cart. A
retry finds the same sealed state and finishes the work, or finds the marker in its cart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from flask import current_app, flash, has_request_context, redirect, request, url_for
from flask.typing import ResponseReturnValue

from . import signals
from .context import RequestCarts, request_carts
from .errors import CartClosed, InvalidInput, InvalidInstance, InvalidLink, LoginRequired
from .identity import is_guest_id
from .lines import CartState, Owner
from .navigation import follow_or_confirm
from .request_cart import RequestCart
from .stores.base import CartKey, merge_marker
from .tokens import read_token, token_maker
from .views import blueprint, same_site_url

PURPOSE = "recover"
CUSTOMER_PREFIX = "customer:"
DEFAULT_MAX_AGE = 7 * 86400
ENDPOINT = "flask_cart.recover_cart"
_PLACEHOLDER = "flask-cart-token-placeholder"
#: A browser's claim on a guest cart, merged into it as a marker: ``recover:<its cart id>``.
CLAIM_PREFIX = "recover:"


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
    _check_instance(manager.settings().instances, instance)
    recovery_payload(identifier, instance)  # a bad identifier is refused before max_age
    return recovery_links(manager, max_age)(identifier, instance)


def _check_instance(instances: Sequence[str], instance: str) -> None:
    if instance not in instances:
        raise InvalidInstance(f"unknown cart instance {instance!r}; one of: {', '.join(instances)}")


def recovery_links(
    manager: Any, max_age: float | timedelta | None = DEFAULT_MAX_AGE
) -> Callable[[str, str], str]:
    """:func:`recovery_url` for many carts: ``make(identifier, instance)``, with the URL
    around the token built once and one expiry for all (``flask cart abandoned``)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    instances = manager.settings(app).instances
    if isinstance(max_age, timedelta):
        max_age = max_age.total_seconds()
    token_of = token_maker(app, PURPOSE, max_age)
    if not has_request_context() and not app.config.get("SERVER_NAME"):
        raise RuntimeError(
            "recovery_url outside a request needs the shop's host: set SERVER_NAME "
            "(and PREFERRED_URL_SCHEME) in the app's config"
        )
    # A token is URL-safe base64 and dots, which the route's converter never quotes.
    before, _, after = url_for(ENDPOINT, token=_PLACEHOLDER, _external=True).rpartition(
        _PLACEHOLDER
    )

    def make(identifier: str, instance: str = "cart") -> str:
        _check_instance(instances, instance)
        return before + token_of(recovery_payload(identifier, instance)) + after

    return make


@blueprint.route("/recover/<path:token>", methods=["GET", "POST"])
def recover_cart(token: str) -> ResponseReturnValue:
    """Give this browser the cart the recovery token names (see the module's docstring)."""
    target = read_target(token)
    page = follow_or_confirm("Recover your cart?", "Recover my cart")
    if page is not None:
        return page
    ctx = request_carts()
    if "customer" in target:
        return _customer_cart(ctx, target["customer"], target["instance"])
    return _guest_cart(ctx, target["guest"], target["instance"])


def read_target(token: str) -> dict[str, str]:
    """The token's payload, checked: InvalidLink (400) for anything not made here now."""
    data = read_token(current_app, PURPOSE, token)
    if not isinstance(data, dict) or set(data) not in (
        {"guest", "instance"},
        {"customer", "instance"},
    ):
        raise InvalidLink("this link is not valid")
    if not all(isinstance(value, str) for value in data.values()):
        raise InvalidLink("this link is not valid")
    settings = request_carts().settings
    if data["instance"] not in settings.instances:
        raise InvalidLink("this link names a cart this shop does not keep")
    if "guest" in data and not is_guest_id(data["guest"]):
        raise InvalidLink("this link is not valid")
    return data


def _land() -> ResponseReturnValue:
    """303 to a same-site ``next``, else CART_LINK_REDIRECT, else "/"."""
    candidate = request.args.get("next")
    if candidate and same_site_url(candidate):
        return redirect(candidate, code=303)
    return redirect(current_app.config.get("CART_LINK_REDIRECT") or "/", code=303)


def _customer_cart(ctx: RequestCarts, customer_id: str, instance: str) -> ResponseReturnValue:
    """The customer's own cart: it is theirs once they are logged in as that customer."""
    identity = ctx.identity()
    if identity.customer_id != customer_id:
        return _ask_for_login(identity.customer_id is not None)
    cart = ctx.cart(instance)
    flash("Here is your cart.", "cart-info")
    ctx.send(
        signals.cart_recovered,
        cart=cart,
        identifier=identity.identifier,
        instance=instance,
        moved={},
    )
    return _land()


def _ask_for_login(as_someone_else: bool) -> ResponseReturnValue:
    """Flask-Login's login_view with ``next`` back to this link; 401 without a login_view."""
    manager = getattr(current_app, "login_manager", None)
    view = getattr(manager, "login_view", None)
    message = "Log in to see your saved cart."
    if as_someone_else:
        message = "This cart belongs to another account: log in to that account to see it."
    if not view:
        raise LoginRequired(message)
    from flask_login import login_url

    flash(message, "cart-warning")
    return redirect(login_url(view, next_url=request.url), code=303)


def _guest_cart(ctx: RequestCarts, guest_id: str, instance: str) -> ResponseReturnValue:
    """Merge the guest cart into this browser's cart, once, whoever else opens the link."""
    settings = ctx.settings
    source = CartKey(guest_id, instance)
    cart = ctx.cart(instance)
    if cart.key == source:
        flash("Your cart is here.", "cart-info")  # its own browser opened the link
        return _land()
    store = ctx.store
    if _recovered_into(store.load(cart.key), source):
        flash("This cart has been recovered already.", "cart-info")
        return _land()
    claim = CLAIM_PREFIX + cart.identifier
    state = store.load(source)
    sealed = CartState()
    if state.exists and state.customer_id is None and (state.sealed or state.lines):
        if not state.sealed:
            try:  # the claim: a marker merged into the guest cart (no lines), once per browser
                owner = Owner(None, settings.guest_ttl)
                store.merge(
                    source, {}, strategy="sum", marker=claim, owner=owner, limits=settings.limits
                )
            except CartClosed:
                pass  # sealed meanwhile: the claims it holds decide, below
        sealed = store.seal(source)
    claims = sorted(m for m in sealed.merged if m.startswith(CLAIM_PREFIX))
    if not sealed.exists or sealed.customer_id is not None or claims[:1] != [claim]:
        return _gone(cart, store.load(cart.key), source)
    if not sealed.lines:  # emptied (or deleted and re-made by a late claim) meanwhile
        store.delete(source)
        return _gone(cart, store.load(cart.key), source)
    # This browser's claim is the first in the sealed cart: it, and only it, takes the lines.
    caps = ctx.catalog.stock_caps(sealed.lines) if ctx.catalog.available else None
    outcome = store.merge(
        cart.key,
        sealed.lines,
        strategy=settings.merge_strategy,
        marker=merge_marker(source, sealed),
        owner=cart.owner,
        limits=settings.limits,
        line_caps=caps,
    )
    cart._wrote(outcome.state)
    ctx.wrote(cart, changed=True)  # a guest's cookie is issued; a dead id is not adopted
    store.delete(source)
    if outcome.already_merged:
        flash("This cart has been recovered already.", "cart-info")
        return _land()
    flash("Your saved cart is back.", "cart-info")
    ctx.send(
        signals.cart_recovered,
        cart=cart,
        identifier=guest_id,
        instance=instance,
        moved=dict(outcome.moved),
    )
    return _land()


def _gone(cart: RequestCart, state: CartState, source: CartKey) -> ResponseReturnValue:
    """The guest cart is not this browser's to take: say why, change nothing."""
    if _recovered_into(state, source):
        flash("This cart has been recovered already.", "cart-info")
    else:
        flash(
            "This cart is no longer available: it was ordered, recovered elsewhere, "
            "or has expired.",
            "cart-warning",
        )
    return _land()


def _recovered_into(state: CartState, source: CartKey) -> bool:
    """Whether `state` (the browser's cart) holds a merge of the guest cart at `source`."""
    prefix = f"{source.identifier}:{source.instance}@"
    return any(marker.startswith(prefix) for marker in state.merged)


__all__ = ["recovery_links", "recovery_payload", "recovery_url"]
