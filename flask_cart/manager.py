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

from .abandoned import Stage, parse_stages
from .catalog import ProductLoader
from .context import finish_request, prepare_request, request_carts
from .errors import CartError, StoreUnavailable
from .lines import Limits, check_strategy
from .request_cart import RequestCart
from .stores.base import CartStore
from .stores.registry import STORES, store_class

DEFAULTS: dict[str, Any] = {
    "CART_STORE": "sqlalchemy",
    "CART_DATABASE_URI": None,
    "CART_REDIS_URL": "redis://localhost:6379/0",
    "CART_REDIS": None,
    "CART_COOKIE_NAME": "guest_cart_id",
    "CART_COOKIE_SECURE": None,
    "CART_COOKIE_SAMESITE": "Lax",
    "CART_GUEST_DAYS": 30,
    "CART_CUSTOMER_DAYS": 90,
    "CART_SYNC_SECONDS": 30,
    "CART_URL_PREFIX": "/cart",
    "CART_MAX_LINE_QUANTITY": 999,
    "CART_MAX_LINES": 100,
    "CART_MERGE_STRATEGY": "sum",
    "CART_CURRENCY": "USD",
    "CART_INSTANCES": ("cart", "wishlist"),
    "CART_STORE_TIMEOUT": 2,  # seconds; bounds every store call (connect, statement, lock)
    "CART_RESTORE": "lazy",  # "lazy": on first use of the cart; "eager": before the view
    "CART_LINK_REDIRECT": "/",  # where a followed cart link lands without a same-site `next`
    "CART_ABANDONED_STAGES": ("1h", "24h", "72h"),  # default stages of flask cart abandoned
    # Additions to the contract's keys:
    "CART_REDIS_TIMEOUT": None,  # deprecated alias of CART_STORE_TIMEOUT for CART_REDIS_URL
    "CART_KEY_PREFIX": "flask_cart:",  # Redis key prefix
    "CART_TABLE_NAME": "flask_cart",  # SQL table name
    "CART_STORE_OPTIONS": {},  # keyword arguments for a CART_STORE given as a dotted path
    "CART_BLUEPRINT": True,  # False: no HTTP routes (current_cart and the CLI still work)
    "CART_SYNC_COOKIE_NAME": "cart_sync",  # the sync-window snapshot cookie
    "CART_TRUSTED_ORIGINS": (),  # other origins ("https://shop.example") allowed to post
    # True: a StoreUnavailable raised anywhere in the app (a page reading current_cart)
    # answers the JSON 503; False: the cart routes do, the app's own pages are the app's.
    "CART_HANDLE_STORE_ERRORS": False,
}

DEFAULT_RECOVERY_MAX_AGE = 7 * 86400  # seconds
RESTORE_MODES = ("lazy", "eager")


@dataclass(frozen=True)
class Settings:
    """The CART_* configuration of one app, read and checked at init_app."""

    cookie_name: str
    cookie_secure: bool | None
    cookie_samesite: str | None
    guest_ttl: int
    customer_ttl: int
    sync_seconds: int
    sync_cookie_name: str
    url_prefix: str
    limits: Limits
    merge_strategy: str
    currency: str
    instances: tuple[str, ...]
    trusted_origins: frozenset[str]
    store_timeout: float = 2.0
    restore: str = "lazy"
    link_redirect: str = "/"
    abandoned_stages: tuple[Stage, ...] = ()

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        instances = tuple(config["CART_INSTANCES"])
        if "cart" not in instances or not all(isinstance(i, str) and i for i in instances):
            raise ValueError("CART_INSTANCES must be non-empty strings and include 'cart'")
        timeout = store_timeout(config)
        restore = config["CART_RESTORE"]
        if restore not in RESTORE_MODES:
            raise ValueError(f"CART_RESTORE must be one of {RESTORE_MODES}, got {restore!r}")
        days = {key: config[key] for key in ("CART_GUEST_DAYS", "CART_CUSTOMER_DAYS")}
        for key, value in days.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{key} must be a positive number of days")
        stages = config["CART_ABANDONED_STAGES"]
        try:
            if isinstance(stages, str):
                raise ValueError("a sequence of durations is needed, not one string")
            abandoned_stages = parse_stages(stages)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"CART_ABANDONED_STAGES: {exc}") from None
        return cls(
            abandoned_stages=abandoned_stages,
            cookie_name=str(config["CART_COOKIE_NAME"]),
            cookie_secure=config["CART_COOKIE_SECURE"],
            cookie_samesite=config["CART_COOKIE_SAMESITE"],
            guest_ttl=int(days["CART_GUEST_DAYS"] * 86400),
            customer_ttl=int(days["CART_CUSTOMER_DAYS"] * 86400),
            sync_seconds=int(config["CART_SYNC_SECONDS"]),
            sync_cookie_name=str(config["CART_SYNC_COOKIE_NAME"]),
            url_prefix=str(config["CART_URL_PREFIX"]),
            limits=Limits(config["CART_MAX_LINE_QUANTITY"], config["CART_MAX_LINES"]),
            merge_strategy=check_strategy(config["CART_MERGE_STRATEGY"]),
            currency=str(config["CART_CURRENCY"]),
            instances=instances,
            trusted_origins=frozenset(
                str(o).rstrip("/").lower() for o in config["CART_TRUSTED_ORIGINS"]
            ),
            store_timeout=timeout,
            restore=restore,
            link_redirect=link_redirect(config["CART_LINK_REDIRECT"]),
        )


def link_redirect(value: object) -> str:
    """CART_LINK_REDIRECT: a path on this site ("/", "/cart") or an absolute http(s) URL."""
    from .links import valid_redirect

    if not isinstance(value, str) or not valid_redirect(value):
        raise ValueError(
            f"CART_LINK_REDIRECT must be a path (\"/cart\") or an http(s) URL, got {value!r}"
        )
    return value


def store_timeout(config: Any) -> float:
    """CART_STORE_TIMEOUT (CART_REDIS_TIMEOUT, when set, for an own Redis client): seconds > 0."""
    value = config["CART_STORE_TIMEOUT"]
    if config.get("CART_REDIS_TIMEOUT") is not None and config["CART_STORE"] == "redis":
        value = config["CART_REDIS_TIMEOUT"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600:
        raise ValueError("CART_STORE_TIMEOUT must be a number of seconds in (0, 600]")
    return float(value)


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
    cls = store_class(spec)
    if spec not in STORES:
        return cls(**app.config["CART_STORE_OPTIONS"])
    builtin: Any = cls  # SQLStore or RedisStore
    store: CartStore = builtin.from_config(app, db=db, timeout=store_timeout(app.config))
    return store


class CartManager:
    """The flask-cart extension: ``carts = CartManager(app, db=db)`` or ``init_app`` later."""

    def __init__(self, app: Flask | None = None, db: Any = None) -> None:
        self.loader: ProductLoader | None = None
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
            from . import (
                links,  # noqa: F401 - adds the cart-link routes to the blueprint
                recovery,  # noqa: F401 - adds /recover/<token> to the blueprint
            )
            from .views import blueprint, unmatched_route

            app.before_request(unmatched_route)  # before the blueprint's own hooks
            app.register_blueprint(blueprint, url_prefix=settings.url_prefix)
        else:  # the blueprint registers them otherwise
            app.before_request(prepare_request)
            app.after_request(finish_request)
        if self._login is None:
            from .login import connect_login

            self._login = connect_login(self)
        _register_cli(app)

    def product_loader(self, loader: ProductLoader) -> ProductLoader:
        """Register ``loader(product_id) -> None | mapping or object with unit_cost``
        (Decimal, str or int) and optionally ``name`` and ``stock``. Prices come only
        from here; the HTTP routes need it."""
        self.loader = loader
        return loader

    def _state(self, app: Flask | None) -> _AppState:
        app = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._states[app]
        except KeyError:
            raise RuntimeError("this CartManager was not initialised on this app") from None

    def settings(self, app: Flask | None = None) -> Settings:
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
        from .links import cart_link

        return cart_link(self, items, replace=replace, max_age=max_age, instance=instance)

    def link_guest_cart(self, user: Any) -> None:
        """After registration: make the browser's guest carts `user`'s carts (re-keyed, not
        copied) and clear the guest cookie. Call it before or after ``login_user(user)``."""
        request_carts().link_guest_carts(user)

    def abandoned_reports(
        self, stages: Sequence[str] | None = None, *, limit: int | None = 200
    ) -> list[dict[str, Any]]:
        """What ``flask cart abandoned --dry-run`` would report now, as its ``--json`` objects
        (`stages` default to CART_ABANDONED_STAGES; nothing is claimed, no signal is sent;
        ``recovery_url`` is None where no link can be made)."""
        from .abandoned import parse_stages, report_json, run_abandoned

        chosen = parse_stages(stages) if stages is not None else self.settings().abandoned_stages
        reports = []
        for batch in run_abandoned(self.get_store(), stages=chosen, dry_run=True, limit=limit):
            for report in batch:
                try:
                    url: str | None = self.recovery_url(report.key.identifier, report.key.instance)
                except (CartError, RuntimeError):
                    url = None
                reports.append(report_json(report, url))
        return reports

    def recovery_url(
        self,
        identifier: str,
        instance: str = "cart",
        max_age: float | timedelta | None = DEFAULT_RECOVERY_MAX_AGE,
    ) -> str:
        """A signed absolute URL to ``GET /cart/recover/<token>`` that gives the stored cart
        `identifier` (a guest id or ``customer:<user id>``) to the browser that opens it.
        Outside a request (the CLI) SERVER_NAME names the host; without it, RuntimeError."""
        from .recovery import recovery_url

        return recovery_url(self, identifier, instance, max_age)


def _current_cart() -> RequestCart:
    return request_carts().cart("cart")


#: The request's cart (instance "cart"), loaded on first use. Also a template global.
current_cart: RequestCart = LocalProxy(_current_cart)  # type: ignore[assignment]


def _template_context() -> dict[str, Any]:
    return {"current_cart": current_cart}


def store_unavailable_response(exc: StoreUnavailable) -> ResponseReturnValue:
    """The JSON 503 for a StoreUnavailable: the app-wide handler CART_HANDLE_STORE_ERRORS
    registers, also for an app to register on its own pages or blueprints."""
    return jsonify(exc.to_dict()), exc.status


def _register_cli(app: Flask) -> None:
    """Add ``flask cart ...`` (also when the blueprint is disabled)."""
    from .cli import cart_cli

    app.cli.add_command(cart_cli)
