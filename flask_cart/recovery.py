"""Recovery links: ``carts.recovery_url(...)`` and ``/cart/recover/<token>``.

A recovery URL carries a signed token (purpose ``recover``, so no other token passes)
naming one stored cart: a guest cart (``{"guest": <uuid>, "instance": ...}``) or a
customer's (``{"customer": <user id>, "instance": ...}``).

A customer's link changes nothing: logged in as that customer, the browser lands on the
shop; logged out, on Flask-Login's login view with ``next`` back to the link; logged in as
someone else, on CART_LINK_REDIRECT with a flashed message (never the login view, which
sends a logged-in user straight back: a redirect loop).

A guest's link, opened (GET), changes nothing either, so a mail scanner or a prefetch takes
nothing: it shows ``flask_cart/confirm.html`` listing the saved lines at today's prices,
whose button POSTs back with a signed confirmation token (flask_cart.navigation). That POST
gives the cart to exactly one browser, once, on every store, with the store's own merge.
The browser's own cart is checked first: one sealed by a login merge running now answers
409 and the saved cart is left as it was. Then the browser merges an empty claim marker
(``recover:<its cart id>``) into the guest cart and seals it; the seal freezes the set of
claims (a sealed cart takes no more merges), so every browser reads the same set and the
first claim in sort order wins. Only the winner merges the sealed lines into its cart,
under the merge marker of that sealed state (applied once however often it is retried),
and then deletes the guest cart. A retry finds the same sealed state and finishes the
work, also after the browser's guest cart was merged at a login meanwhile (the first
claim's cart is then a tombstone naming this browser's cart), or finds the marker in its
cart. Its owner's browser opening the link later is told the cart went.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from flask import current_app, flash, has_request_context, redirect, request, url_for
from flask.typing import ResponseReturnValue

from . import signals
from .catalog import Unavailable
from .context import RequestCarts, request_carts
from .errors import (
    CartClosed,
    ConfirmationRequired,
    InvalidInput,
    InvalidInstance,
    InvalidLink,
    LoginRequired,
)
from .identity import is_guest_id
from .lines import CartState, Line, MergeOutcome, Owner
from .navigation import (
    NOT_CONFIRMED,
    check_navigation,
    confirmation_page,
    confirmed,
    wants_page,
)
from .request_cart import MAX_NAME_CHARS, RequestCart
from .shopper import landing, link_redirect, plural
from .stores.base import CartKey, is_tombstone, merge_marker, tombstone_marker
from .tokens import read_token, token_maker
from .views import blueprint

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
    carts = request_carts()
    if "customer" in target:
        check_navigation()
        return _customer_cart(carts, target["customer"], target["instance"])
    return _guest_cart(carts, target["guest"], target["instance"])


def read_target(token: str) -> dict[str, str]:
    """The token's payload, checked: InvalidLink (400) for anything not made here now."""
    data = read_token(current_app, PURPOSE, token)
    if not isinstance(data, dict) or set(data) not in (
        {"guest", "instance"},
        {"customer", "instance"},
    ):
        raise InvalidLink("This link is not valid.")
    if not all(isinstance(value, str) for value in data.values()):
        raise InvalidLink("This link is not valid.")
    settings = request_carts().settings
    if data["instance"] not in settings.instances:
        raise InvalidLink("This link names a cart this shop does not keep.")
    if "guest" in data and not is_guest_id(data["guest"]):
        raise InvalidLink("This link is not valid.")
    return data


#: The flashes of a link that cannot be opened here.
ANOTHER_ACCOUNT = "This saved cart belongs to another account: log out first to open it."
ELSEWHERE = (
    "This saved cart is no longer here: it was opened in another browser, ordered, or has expired."
)
GONE = "This cart is no longer available: it was ordered, recovered elsewhere, or has expired."


def _land() -> ResponseReturnValue:
    """303 to a same-site ``next``, else CART_LINK_REDIRECT (under the app's root)."""
    return redirect(landing(), code=303)


def _customer_cart(carts: RequestCarts, customer_id: str, instance: str) -> ResponseReturnValue:
    """The customer's own cart: it is theirs once they are logged in as that customer.
    Opening it changes nothing, so it asks for no confirmation."""
    identity = carts.identity()
    if identity.customer_id is not None and identity.customer_id != customer_id:
        # Never to the login page: a usual login view sends a logged-in user straight
        # back to `next`, which would come here again, forever.
        flash(ANOTHER_ACCOUNT, "cart-warning")
        return redirect(link_redirect(), code=303)
    if identity.customer_id != customer_id:
        return _ask_for_login()
    cart = carts.cart(instance)
    flash("Here is your cart.", "cart-info")
    carts.send(
        signals.cart_recovered,
        cart=cart,
        identifier=identity.identifier,
        instance=instance,
        moved={},
    )
    return _land()


def _ask_for_login() -> ResponseReturnValue:
    """Flask-Login's login_view with ``next`` back to this link; 401 without a login_view."""
    manager = getattr(current_app, "login_manager", None)
    view = getattr(manager, "login_view", None)
    message = "Log in to see your saved cart."
    if not view:
        raise LoginRequired(message)
    from flask_login import login_url  # local: Flask-Login is optional (the login extra)

    flash(message, "cart-warning")
    return redirect(login_url(view, next_url=request.url), code=303)


def _guest_cart(carts: RequestCarts, guest_id: str, instance: str) -> ResponseReturnValue:
    """A GET shows the saved cart's lines with a button; its POST (with the page's
    confirmation token) merges them into this browser's cart, once, whoever else opens the
    link. Nothing is claimed before this browser's own cart is known to take them."""
    check_navigation()
    ask = request.method != "POST"
    refused = False
    if not ask:
        try:
            confirmed()  # the button of the page below, within its 10 minutes
        except ConfirmationRequired:
            if not wants_page():
                raise
            ask = refused = True  # a form another site submitted: the page, to confirm
    source = CartKey(guest_id, instance)
    cart = carts.cart(instance)
    store = carts.store
    if cart.key == source:  # its own browser opened the link
        return _own_browser(store.load(source))
    if _recovered_into(store.load(cart.key), source):
        flash("This cart has been recovered already.", "cart-info")
        return _land()
    if ask:
        return _confirmation(carts, cart, source, refused=refused)
    previous = _ready(carts, cart)  # 409 here, before the saved cart is touched
    settings = carts.settings
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
    if not sealed.exists or sealed.customer_id is not None:
        return _gone(cart, store.load(cart.key), source)
    if not _won(store, sealed, source, cart, claim, previous):
        return _gone(cart, store.load(cart.key), source)
    if not sealed.lines:  # emptied (or deleted and re-made by a late claim) meanwhile
        store.delete(source)
        return _gone(cart, store.load(cart.key), source)
    # This browser's claim is the first in the sealed cart: it, and only it, takes the lines.
    caps = carts.catalog.stock_caps(sealed.lines) if carts.catalog.available else None

    def merge(_op: str | None) -> MergeOutcome:
        return store.merge(
            cart.key,
            sealed.lines,
            strategy=settings.merge_strategy,
            marker=merge_marker(source, sealed),
            owner=cart.owner,
            limits=settings.limits,
            line_caps=caps,
        )

    # changed=True even when already merged: a guest's cookie is issued and a dead id is not
    # adopted. A sealed cart here: 409, the saved cart stays.
    outcome = cart.run_store_merge(merge, changed=True)
    store.delete(source)
    if outcome.already_merged:
        flash("This cart has been recovered already.", "cart-info")
        return _land()
    flash("Your saved cart is back.", "cart-success")
    left = _left_behind(carts, sealed.lines, outcome)
    if left:
        flash(f"Some items could not be brought back: {', '.join(left)}.", "cart-warning")
    carts.send(
        signals.cart_recovered,
        cart=cart,
        identifier=guest_id,
        instance=instance,
        moved=dict(outcome.moved),
    )
    return _land()


def _own_browser(state: CartState) -> ResponseReturnValue:
    """The link opened in the browser whose cart it names: the cart is here, or it went."""
    if state.exists and state.lines and not state.sealed:
        flash("Your cart is here.", "cart-info")
    else:
        flash(ELSEWHERE, "cart-warning")
    return _land()


def _confirmation(
    carts: RequestCarts, cart: RequestCart, source: CartKey, *, refused: bool = False
) -> ResponseReturnValue:
    """The page listing the saved cart's lines at today's prices, with the button that
    recovers them (403 with `refused`: a post without the page's token); a cart no longer
    there is said instead."""
    store = carts.store
    state = store.load(source)
    if not state.exists or state.customer_id is not None or not state.lines:
        return _gone(cart, store.load(cart.key), source)
    if state.sealed:  # claimed by a recovery, or merged at a login: this browser's to finish?
        claim = CLAIM_PREFIX + cart.identifier
        if not _won(store, state, source, cart, claim, None):
            return _gone(cart, store.load(cart.key), source)
    lines = [_page_line(line) for line in carts.catalog.reprice(state).lines.values()]
    count = sum(line.quantity for line in state.lines.values())
    message = f"Your saved cart holds {plural(count, 'item')}: recover it into this browser."
    if refused:
        message = f"{NOT_CONFIRMED} {message}"
    status = 403 if refused else 200
    return confirmation_page("Recover your cart?", "Recover my cart", lines, message, status=status)


def _page_line(line: Line) -> dict[str, Any]:
    """A saved line as the confirmation page lists it: name, quantity and today's price."""
    name = str(line.extra.get("name") or "An item")[:MAX_NAME_CHARS]
    if line.extra.get("available") is False:
        return {"name": f"{name} (no longer available)", "quantity": line.quantity}
    return {"name": name, "quantity": line.quantity, "price": line.unit_cost}


def _ready(carts: RequestCarts, cart: RequestCart) -> str | None:
    """Check that this browser's cart can take the lines before the saved cart is claimed:
    a cart sealed by a login merge running now answers 409 (CartClosed) and the saved cart
    stays as it was; one whose merge was cut off is replaced by a new guest cart. Returns
    the cookie's guest id so dropped (its claim may still be finished), else None."""
    state = carts.store.load(cart.key)
    if not state.sealed:
        return None
    if not carts.identity().is_guest or cart.being_merged():
        raise CartClosed("Your cart is being updated. Please try again in a moment.")
    previous = cart.identifier
    carts.drop_guest_id()
    return previous


def _won(
    store: Any,
    sealed: CartState,
    source: CartKey,
    cart: RequestCart,
    claim: str,
    previous: str | None,
) -> bool:
    """Whether this browser takes the sealed saved cart: its claim is the first, or the
    first is this browser's earlier one (a guest id it dropped, or whose cart a login has
    since merged into this browser's cart), so a recovery cut off half-way can finish."""
    claims = sorted(m for m in sealed.merged if m.startswith(CLAIM_PREFIX))
    if not claims:
        return False
    first = claims[0]
    if first == claim or (previous is not None and first == CLAIM_PREFIX + previous):
        return True
    earlier = store.load(CartKey(first[len(CLAIM_PREFIX) :], source.instance))
    return is_tombstone(earlier) and tombstone_marker(cart.key) in earlier.merged


def _left_behind(
    carts: RequestCarts, saved: Mapping[str, Line], outcome: MergeOutcome
) -> list[str]:
    """The saved lines the browser's cart does not hold in full after the merge (the stock
    or a cap held them back), by product name: "Mug", "Spoon (2 of 5)"."""
    left = []
    for product_id, line in saved.items():
        now = outcome.state.lines.get(product_id)
        held = 0 if now is None else now.quantity
        if held >= line.quantity:
            continue
        product = carts.catalog.lookup(product_id) if carts.catalog.available else None
        name = None if product is None or isinstance(product, Unavailable) else product.name
        name = (name or str(line.extra.get("name") or "an item"))[:MAX_NAME_CHARS]
        left.append(name if held == 0 else f"{name} ({held} of {line.quantity})")
    return left


def _gone(cart: RequestCart, state: CartState, source: CartKey) -> ResponseReturnValue:
    """The guest cart is not this browser's to take: say why, change nothing."""
    if _recovered_into(state, source):
        flash("This cart has been recovered already.", "cart-info")
    else:
        flash(GONE, "cart-warning")
    return _land()


def _recovered_into(state: CartState, source: CartKey) -> bool:
    """Whether `state` (the browser's cart) holds a merge of the guest cart at `source`."""
    prefix = f"{source.identifier}:{source.instance}@"
    return any(marker.startswith(prefix) for marker in state.merged)


__all__ = ["recovery_links", "recovery_payload", "recovery_url"]
