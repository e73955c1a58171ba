"""`CartManager`: the Flask extension (config, store, blueprint, hooks, product loader).

Per-app state (settings read at ``init_app`` and the store) lives on the manager, keyed by
app; the manager registers itself as ``app.extensions["cart"]``. Nothing runs on a request
that does not touch a cart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.local import LocalProxy

from . import (
    contact,  # noqa: F401 - adds /email and /unsubscribe/<token> to the blueprint
    links,  # also adds the cart-link routes to the blueprint
    recovery,  # also adds /recover/<token> to the blueprint
)
from .abandoned import preview_reports
from .catalog import ProductLoader
from .cli import cart_cli
from .config import DEFAULTS, Settings, store_timeout
from .context import finish_request, prepare_request, request_carts
from .errors import StoreUnavailable
from .login import connect_login
from .navigation import wants_page
from .pages import PageError, error_page
from .request_cart import RequestCart
from .shadowing import check_once
from .shopper import UNAVAILABLE, link_redirect
from .stores.base import CartStore
from .stores.registry import STORES, store_class
from .views import blueprint, unmatched_route

#: How long a recovery link stays valid by default (seconds).
DEFAULT_RECOVERY_MAX_AGE = 7 * 86400


@dataclass
class _AppState:
    settings: Settings
    store: CartStore
    create_table: bool = False
    app_db: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_store(app: Flask, db: Any = None) -> CartStore:
    """The store CART_STORE names: a CartStore instance as is; a built-in store's name
    ("sqlalchemy", "redis"), built by that class's ``from_config``; a dotted path to a
    CartStore subclass, built with ``**CART_STORE_OPTIONS``."""
    spec = app.config["CART_STORE"]
    if isinstance(spec, CartStore):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"CART_STORE must be a name, a dotted path or a CartStore, not {spec!r}")
    if spec not in STORES:
        return store_class(spec)(**app.config["CART_STORE_OPTIONS"])
    if db is not None and spec != "redis" and not _flask_sqlalchemy(db):
        raise TypeError(
            f"db= takes a Flask-SQLAlchemy instance (pip install 'flask-cart[sqlalchemy]'), "
            f"not {type(db).__name__}"
        )
    try:
        builtin: Any = store_class(spec)  # SQLStore or RedisStore
        store: CartStore = builtin.from_config(app, db=db, timeout=store_timeout(app.config))
    except ImportError as exc:
        missing = _missing_module(exc)
        if missing not in STORE_EXTRAS:
            raise
        raise ImportError(
            f"CART_STORE = {spec!r} needs the {missing!r} package, which is not installed: "
            f"pip install 'flask-cart[{STORE_EXTRAS[missing]}]'",
            name=missing,
        ) from None
    return store


#: The extra of flask-cart that installs each package a built-in store imports.
STORE_EXTRAS = {"redis": "redis", "sqlalchemy": "sqlalchemy", "flask_sqlalchemy": "sqlalchemy"}


def _missing_module(exc: ImportError) -> str | None:
    """The top-level package an ImportError (or werkzeug's ImportStringError) misses."""
    cause: Any = getattr(exc, "exception", None) or exc
    name = getattr(cause, "name", None)
    return name.partition(".")[0] if isinstance(name, str) else None


def _flask_sqlalchemy(db: Any) -> bool:
    """Whether `db` looks like a Flask-SQLAlchemy extension (its engine and metadata)."""
    return hasattr(type(db), "engine") and hasattr(db, "metadata")


class CartManager:
    """The flask-cart extension: ``carts = CartManager(app, db=db)`` or ``init_app`` later."""

    def __init__(self, app: Flask | None = None, db: Any = None) -> None:
        self.loader: ProductLoader | None = None
        #: customer_id -> address or None, for ``flask cart abandoned --send``.
        self.email_lookup: Callable[[str], str | None] | None = None
        #: Seconds since the epoch; the sync window's clock (tests may replace it).
        self.clock: Callable[[], float] = time.time
        self._states: WeakKeyDictionary[Flask, _AppState] = WeakKeyDictionary()
        self._login: Any = None
        if app is not None:
            self.init_app(app, db=db)

    def init_app(self, app: Flask, db: Any = None) -> None:
        """Set the config defaults, make the store, register routes, receivers and the CLI."""
        if "cart" in app.extensions:
            raise RuntimeError(
                "A 'CartManager' instance has already been registered on this Flask app."
                " Import and use that instance instead."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        settings = Settings.from_config(app.config)
        store = make_store(app, db)
        app_db = (
            db is not None
            and app.config["CART_STORE"] in ("sqlalchemy", "sql")
            and app.config["CART_DATABASE_URI"] is None
        )
        self._states[app] = _AppState(settings, store, store.create_on_first_use, app_db)
        app.extensions["cart"] = self
        app.context_processor(_template_context)
        if app.config["CART_HANDLE_STORE_ERRORS"]:
            app.register_error_handler(StoreUnavailable, store_unavailable_response)
        if app.config["CART_BLUEPRINT"]:
            app.before_request(unmatched_route)  # before the blueprint's own hooks
            app.before_request(check_once(app))  # a shop rule on a cart route's URL: warn
            app.register_blueprint(blueprint, url_prefix=settings.url_prefix)
        else:  # the blueprint registers them otherwise
            app.before_request(prepare_request)
            app.after_request(finish_request)
        if self._login is None:
            self._login = connect_login(self)
        _register_cli(app)

    def product_loader(self, loader: ProductLoader) -> ProductLoader:
        """Register ``loader(product_id) -> None | mapping or object with unit_cost``
        (Decimal, str or int) and optionally ``name`` and ``stock``. Prices come only
        from here; the HTTP routes need it."""
        self.loader = loader
        return loader

    def customer_email(self, lookup: Callable[[str], str | None]) -> Callable[[str], str | None]:
        """Register ``lookup(customer_id) -> address or None``: where ``flask cart abandoned
        --send`` sends a customer's reminder (None: not sent)."""
        self.email_lookup = lookup
        return lookup

    def _state(self, app: Flask | None) -> _AppState:
        app = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._states[app]
        except KeyError:
            raise RuntimeError("this CartManager was not initialised on this app") from None

    def settings(self, app: Flask | None = None) -> Settings:
        """The app's checked, read-only CART_* settings (the current app's by default)."""
        return self._state(app).settings

    def uses_app_db(self, app: Flask | None = None) -> bool:
        """True when the carts live in the app's Flask-SQLAlchemy database (CART_STORE
        "sqlalchemy" with ``db`` and no CART_DATABASE_URI): ``checkout(session=db.session)``
        then commits the order and the cart's removal together."""
        return self._state(app).app_db

    def eager(self, app: Flask) -> bool:
        """Whether `app` restores the cart before the view (CART_RESTORE = "eager")."""
        return self._state(app).settings.restore == "eager"

    def get_store(self, app: Flask | None = None) -> CartStore:
        """The app's store (the current app's by default); the SQLite default's table is
        created on first use."""
        state = self._state(app)
        if state.create_table:
            with state.lock:
                if state.create_table:
                    state.store.create_all()
                    state.create_table = False
        return state.store

    def create_tables(self) -> None:
        """Create the SQL store's table where missing (inside an app context)."""
        self.get_store().create_all()

    def cart(self, instance: str = "cart") -> RequestCart:
        """The request's cart of `instance` (an InvalidInstance error for an unknown one):
        ``carts.cart("wishlist")``; ``carts.cart()`` is ``current_cart``."""
        return request_carts().cart(instance)

    #: The older name of :meth:`cart` (kept: the contract's ``carts.get(instance=...)``).
    get = cart

    def cart_link(
        self,
        items: Mapping[str, int],
        replace: bool = False,
        max_age: float | None = None,
        *,
        instance: str = "cart",
    ) -> str:
        """A signed absolute URL that adds `items` (product -> units) to the cart of the
        browser that follows it, once per cart; `replace` empties the cart first (in the same
        write). Past `max_age` seconds it answers 410. See flask_cart.links."""
        return links.cart_link(self, items, replace=replace, max_age=max_age, instance=instance)

    def link_guest_cart(self, user: Any) -> None:
        """After registration: make the browser's guest carts `user`'s carts (re-keyed, not
        copied) and clear the guest cookie. Call it before or after ``login_user(user)``."""
        request_carts().link_guest_carts(user)

    def abandoned_reports(
        self,
        stages: Sequence[str] | None = None,
        *,
        limit: int | None = 200,
        with_links: bool = False,
    ) -> list[dict[str, Any]]:
        """What ``flask cart abandoned --dry-run`` would report now, as its ``--json`` objects
        (`stages` default to CART_ABANDONED_STAGES; nothing is claimed, no signal is sent).
        ``recovery_url`` is None unless `with_links` (then None where no link can be made)."""
        return preview_reports(self, stages, limit=limit, with_links=with_links)

    def recovery_url(
        self,
        identifier: str,
        instance: str = "cart",
        max_age: float | timedelta | None = DEFAULT_RECOVERY_MAX_AGE,
    ) -> str:
        """A signed absolute URL to ``GET /cart/recover/<token>`` that gives the stored cart
        `identifier` (a guest id or ``customer:<user id>``) to the browser that opens it.
        Outside a request (the CLI) SERVER_NAME names the host; without it, RuntimeError."""
        return recovery.recovery_url(self, identifier, instance, max_age)


def _current_cart() -> RequestCart:
    return request_carts().cart("cart")


#: The request's cart (instance "cart"), loaded on first use. Also a template global.
current_cart: RequestCart = LocalProxy(_current_cart)  # type: ignore[assignment]


def _template_context() -> dict[str, Any]:
    return {"current_cart": current_cart}


def store_unavailable_response(exc: StoreUnavailable) -> ResponseReturnValue:
    """The 503 for a StoreUnavailable: the app-wide handler CART_HANDLE_STORE_ERRORS
    registers, also for an app to register on its own pages or blueprints. A request that
    wants a page (flask_cart.wants_page) gets ``flask_cart/error.html``; ``fetch`` and JSON
    clients get the JSON error body. The page never shows the exception's text."""
    if wants_page():
        error = PageError(exc.status, exc.code, UNAVAILABLE)
        return error_page(error, link_redirect())
    return jsonify(exc.to_dict()), exc.status


def _register_cli(app: Flask) -> None:
    """Add ``flask cart ...`` (also when the blueprint is disabled)."""
    app.cli.add_command(cart_cli)
