"""`CartManager`: the Flask extension (config, store, blueprint, hooks, product loader).

Per-app state (settings read at ``init_app`` and the store) lives on the manager, keyed by
app; the manager registers itself as ``app.extensions["cart"]``. Nothing runs on a request
that does not touch a cart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
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
from .errors import StoreUnavailable
from .lines import Limits, check_strategy
from .request_cart import RequestCart
from .stores.base import CartStore, store_from_name

log = logging.getLogger("flask_cart")

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
    "CART_ABANDONED_STAGES": ("1h", "24h", "72h"),  # default stages of flask cart abandoned
    # Additions to the contract's keys:
    "CART_REDIS_TIMEOUT": None,  # deprecated alias of CART_STORE_TIMEOUT for CART_REDIS_URL
    "CART_KEY_PREFIX": "flask_cart:",  # Redis key prefix
    "CART_TABLE_NAME": "flask_cart",  # SQL table name
    "CART_STORE_OPTIONS": {},  # keyword arguments for a CART_STORE given as a dotted path
    "CART_BLUEPRINT": True,  # False: no HTTP routes (current_cart and the CLI still work)
    "CART_SYNC_COOKIE_NAME": "cart_sync",  # the sync-window snapshot cookie
    "CART_TRUSTED_ORIGINS": (),  # other origins ("https://shop.example") allowed to post
}

SQLITE_FILE = "flask_cart.sqlite3"
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
        )


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
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_store(app: Flask, db: Any = None) -> tuple[CartStore, bool]:
    """The store CART_STORE names, and whether its table is to be created on first use.

    - a CartStore instance: used as is;
    - ``"sqlalchemy"``: on CART_DATABASE_URI when set; else on `db`'s engine, with the table
      on ``db.metadata`` (so ``db.create_all()`` creates it); else on
      ``sqlite:///<instance_path>/flask_cart.sqlite3``, whose table is created on first use;
    - ``"redis"``: on the CART_REDIS client, else on CART_REDIS_URL with CART_STORE_TIMEOUT;
    - a dotted path to a CartStore subclass: constructed with ``**CART_STORE_OPTIONS``.
    """
    config = app.config
    spec = config["CART_STORE"]
    timeout = store_timeout(config)
    if isinstance(spec, CartStore):
        return spec, False
    if spec in ("sqlalchemy", "sql"):
        from .stores.sql import SQLStore, cart_table

        uri = config["CART_DATABASE_URI"]
        table_name = config["CART_TABLE_NAME"]
        if uri is None and db is not None:
            table = cart_table(db.metadata, table_name)
            return SQLStore(lambda: db.engine, table=table, timeout=timeout), False
        lazy = uri is None
        if uri is None:
            os.makedirs(app.instance_path, exist_ok=True)
            uri = "sqlite:///" + os.path.join(app.instance_path, SQLITE_FILE)
        engine = SQLStore.create_engine(uri, timeout=timeout)
        return SQLStore(engine, table_name=table_name, timeout=timeout), lazy
    if spec == "redis":
        from .stores.redis import RedisStore, client_wait

        prefix = config["CART_KEY_PREFIX"]
        if config["CART_REDIS"] is not None:
            store = RedisStore(config["CART_REDIS"], prefix=prefix, timeout=timeout)
            wait = client_wait(store.client)
            if wait is not None and wait > timeout + 1:
                log.warning(
                    "flask-cart: the CART_REDIS client may wait %.0f s for a stalled Redis "
                    "(socket timeout x attempts), more than CART_STORE_TIMEOUT (%g s): give it "
                    "socket_timeout, socket_connect_timeout and retry=Retry(NoBackoff(), 0), "
                    "or use CART_REDIS_URL",
                    wait,
                    timeout,
                )
            return store, False
        store = RedisStore.from_url(config["CART_REDIS_URL"], timeout=timeout, prefix=prefix)
        return store, False
    if not isinstance(spec, str):
        raise TypeError(f"CART_STORE must be a name, a dotted path or a CartStore, not {spec!r}")
    return store_from_name(spec)(**config["CART_STORE_OPTIONS"]), False


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
        store, create_table = make_store(app, db)
        self._states[app] = _AppState(settings, store, create_table)
        app.extensions["cart"] = self
        app.context_processor(_template_context)
        app.register_error_handler(StoreUnavailable, _store_unavailable)
        if app.config["CART_BLUEPRINT"]:
            from . import recovery  # noqa: F401 - adds /recover/<token> to the blueprint
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
                    state.store.create_all()  # type: ignore[attr-defined]
                    state.create_table = False
        return state.store

    def create_tables(self) -> None:
        """Create the SQL store's table where missing (inside an app context)."""
        store = self.get_store()
        create_all = getattr(store, "create_all", None)
        if create_all is not None:
            create_all()

    def get(self, instance: str = "cart") -> RequestCart:
        """The request's cart of `instance` (an InvalidInstance error for an unknown one)."""
        return request_carts().cart(instance)

    def link_guest_cart(self, user: Any) -> None:
        """After registration: make the browser's guest carts `user`'s carts (re-keyed, not
        copied) and clear the guest cookie. Call it before or after ``login_user(user)``."""
        from .login import link_guest_cart

        link_guest_cart(request_carts(), user)

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


def _store_unavailable(exc: StoreUnavailable) -> ResponseReturnValue:
    """A page touching the cart while the store is down answers 503, not 500 (an app may
    register its own handler for StoreUnavailable)."""
    return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status


def _register_cli(app: Flask) -> None:
    """Add ``flask cart ...`` (also when the blueprint is disabled)."""
    from .cli import cart_cli

    app.cli.add_command(cart_cli)
