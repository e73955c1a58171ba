"""A shop rule and a cart route that answer the same URL: one warning, on the first request.

A shop with its own ``/cart`` page and flask-cart's ``GET /cart`` (CART_URL_PREFIX "/cart")
serve one of the two, whichever was registered first, and say nothing. The first request
the app serves compares its ``url_map`` once (a hook that then takes itself off the app):
every rule of another endpoint that matches a URL and method of a flask-cart route, or a
flask-cart route that matches a shop rule's, is logged as a WARNING on the ``flask_cart``
logger naming both rules, their endpoints and the one that is served.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import (
    AnyConverter,
    FloatConverter,
    IntegerConverter,
    Map,
    MapAdapter,
    Rule,
    UUIDConverter,
)

log = logging.getLogger("flask_cart")

PREFIX = "flask_cart."
#: Methods every rule answers (Flask adds OPTIONS; HEAD comes with GET).
_IMPLIED = frozenset({"OPTIONS", "HEAD"})


def check_once(app: Flask) -> Callable[[], None]:
    """An app-wide ``before_request`` hook that checks `app`'s rules on the first request,
    then removes itself from the app's hooks (no cost on the requests after that)."""
    lock = threading.Lock()
    done = False

    def check_routes() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
            hooks = app.before_request_funcs.get(None, [])
            # A new list: Flask may be iterating over the old one right now.
            app.before_request_funcs[None] = [f for f in hooks if f is not check_routes]
        for message in clashes(app):
            log.warning("%s", message)

    return check_routes


def clashes(app: Flask) -> list[str]:
    """One message per pair of a flask-cart route and a rule of another endpoint that
    answer the same URL and method."""
    url_map = app.url_map
    if url_map.host_matching:
        return []
    rules = [r for r in url_map.iter_rules() if not r.subdomain]
    ours = [r for r in rules if r.endpoint.startswith(PREFIX)]
    theirs = [r for r in rules if not r.endpoint.startswith(PREFIX)]
    if not ours or not theirs:
        return []
    served = url_map.bind("localhost")
    pairs: dict[tuple[str, str, str, str], tuple[Rule, Rule, str, str]] = {}
    for from_ours, rules_from, rules_to in ((True, ours, theirs), (False, theirs, ours)):
        adapter = _map_of(url_map, rules_to).bind("localhost")
        for rule in rules_from:
            for path, method in _samples(rule):
                other = _match(adapter, path, method, rules_to)
                if other is None:
                    continue
                cart, shop = (rule, other) if from_ours else (other, rule)
                key = (cart.rule, cart.endpoint, shop.rule, shop.endpoint)
                pairs.setdefault(key, (cart, shop, path, method))
    return [_message(served, *found) for found in pairs.values()]


def _map_of(url_map: Map, rules: list[Rule]) -> Map:
    return Map(
        [rule.empty() for rule in rules],
        converters=url_map.converters,
        strict_slashes=url_map.strict_slashes,
        merge_slashes=url_map.merge_slashes,
    )


def _samples(rule: Rule) -> Iterator[tuple[str, str]]:
    """A URL path the rule matches, with each of its methods."""
    converters = getattr(rule, "_converters", {})
    values = {name: _sample_value(converters.get(name)) for name in rule.arguments}
    try:
        built = rule.build(values, append_unknown=False)
    except (ValueError, TypeError, HTTPException):
        return
    if built is None:
        return
    methods = set(rule.methods or ()) - _IMPLIED or set(rule.methods or ())
    for method in sorted(methods):
        yield built[1], method


def _sample_value(converter: object) -> object:
    if isinstance(converter, IntegerConverter):
        return 1
    if isinstance(converter, FloatConverter):
        return 1.5
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=1)
    if isinstance(converter, AnyConverter):
        return sorted(getattr(converter, "items", ["x"]))[0]
    return "x"


def _match(adapter: MapAdapter, path: str, method: str, rules: list[Rule]) -> Rule | None:
    """The rule of `rules` (as compiled into `adapter`) that answers `method` `path`."""
    try:
        matched, _ = adapter.match(path, method=method, return_rule=True)
    except HTTPException:  # no match, another method, or a redirect: not the same URL
        return None
    same = (r for r in rules if r.rule == matched.rule and r.endpoint == matched.endpoint)
    return next(same, None)


def _message(served: MapAdapter, cart: Rule, shop: Rule, path: str, method: str) -> str:
    try:
        winner, _ = served.match(path, method=method, return_rule=True)
        answered = f'"{winner.endpoint}"'
    except HTTPException:
        answered = "neither"
    return (
        f'flask-cart: the rule "{shop.rule}" (endpoint "{shop.endpoint}") and the cart route '
        f'"{cart.rule}" (endpoint "{cart.endpoint}") both answer {method} {path}; only '
        f"{answered} is served. Give the cart routes a prefix of their own, say "
        'CART_URL_PREFIX = "/api/cart".'
    )


__all__ = ["check_once", "clashes"]
