"""flask-cart's configuration: the CART_* defaults, the checked `Settings` of one app, and
one validator per kind of value (days, seconds, durations, redirect targets).

``CartManager.init_app`` sets the defaults with ``app.config.setdefault`` and freezes the
app's `Settings`; every other module reads the settings, never ``app.config``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from .lines import Limits, check_strategy
from .money import check_currency, minor_digits, quantum
from .stores.base import Stage
from .stores.redis_replicas import check_replicas

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
    "CART_LINE_FIELDS": (),  # further product_loader fields copied onto each line
    # Additions to the contract's keys:
    "CART_REDIS_TIMEOUT": None,  # deprecated alias of CART_STORE_TIMEOUT for CART_REDIS_URL
    "CART_KEY_PREFIX": "flask_cart:",  # Redis key prefix
    "CART_REDIS_REPLICAS": 0,  # Redis replicas a change waits for (WAIT) before its answer
    "CART_TABLE_NAME": "flask_cart",  # SQL table name
    "CART_STORE_OPTIONS": {},  # keyword arguments for a CART_STORE given as a dotted path
    "CART_BLUEPRINT": True,  # False: no HTTP routes (current_cart and the CLI still work)
    "CART_SYNC_COOKIE_NAME": "cart_sync",  # the sync-window snapshot cookie
    "CART_TRUSTED_ORIGINS": (),  # other origins ("https://shop.example") allowed to post
    # True: a StoreUnavailable raised anywhere in the app (a page reading current_cart)
    # answers the JSON 503; False: the cart routes do, the app's own pages are the app's.
    "CART_HANDLE_STORE_ERRORS": False,
}

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
    guest_days: float = 30
    customer_days: float = 90
    link_redirect: str = "/"
    abandoned_stages: tuple[Stage, ...] = ()
    #: Digits of CART_CURRENCY's minor unit, and that unit as a Decimal ("0.01").
    minor_digits: int = 2
    money_quantum: Decimal = Decimal("0.01")
    line_fields: tuple[str, ...] = ()
    #: CART_REDIS_REPLICAS: replicas a Redis change waits for before it is acknowledged.
    redis_replicas: int = 0

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        instances = tuple(config["CART_INSTANCES"])
        if "cart" not in instances or not all(isinstance(i, str) and i for i in instances):
            raise ValueError("CART_INSTANCES must be non-empty strings and include 'cart'")
        timeout = store_timeout(config)
        restore = config["CART_RESTORE"]
        if restore not in RESTORE_MODES:
            raise ValueError(f"CART_RESTORE must be one of {RESTORE_MODES}, got {restore!r}")
        days = {
            key: check_days(config[key], key, positive=True)
            for key in ("CART_GUEST_DAYS", "CART_CUSTOMER_DAYS")
        }
        stages = config["CART_ABANDONED_STAGES"]
        try:
            if isinstance(stages, str):
                raise ValueError("a sequence of durations is needed, not one string")
            abandoned_stages = parse_stages(stages)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"CART_ABANDONED_STAGES: {exc}") from None
        currency = check_currency(config["CART_CURRENCY"])
        return cls(
            abandoned_stages=abandoned_stages,
            cookie_name=str(config["CART_COOKIE_NAME"]),
            cookie_secure=config["CART_COOKIE_SECURE"],
            cookie_samesite=config["CART_COOKIE_SAMESITE"],
            guest_days=days["CART_GUEST_DAYS"],
            customer_days=days["CART_CUSTOMER_DAYS"],
            guest_ttl=int(days["CART_GUEST_DAYS"] * 86400),
            customer_ttl=int(days["CART_CUSTOMER_DAYS"] * 86400),
            sync_seconds=int(config["CART_SYNC_SECONDS"]),
            sync_cookie_name=str(config["CART_SYNC_COOKIE_NAME"]),
            url_prefix=str(config["CART_URL_PREFIX"]),
            limits=Limits(config["CART_MAX_LINE_QUANTITY"], config["CART_MAX_LINES"]),
            merge_strategy=check_strategy(config["CART_MERGE_STRATEGY"]),
            currency=currency,
            minor_digits=minor_digits(currency),
            money_quantum=quantum(minor_digits(currency)),
            line_fields=check_line_fields(config.get("CART_LINE_FIELDS", ())),
            instances=instances,
            trusted_origins=frozenset(
                str(o).rstrip("/").lower() for o in config["CART_TRUSTED_ORIGINS"]
            ),
            store_timeout=timeout,
            restore=restore,
            link_redirect=link_redirect(config["CART_LINK_REDIRECT"]),
            redis_replicas=check_replicas(config.get("CART_REDIS_REPLICAS", 0)),
        )


#: Names a line has of its own: CART_LINE_FIELDS cannot take them.
LINE_FIELD_NAMES = frozenset(
    {
        "product_id",
        "name",
        "quantity",
        "unit_cost",
        "unit_cost_minor",
        "line_total",
        "price_changed",
        "available",
        "unavailable_reason",
    }
)


def check_line_fields(value: object) -> tuple[str, ...]:
    """CART_LINE_FIELDS: a tuple or list of identifiers, none a line's own field name."""
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(name, str) and name.isidentifier() for name in value
    ):
        raise ValueError(
            f'CART_LINE_FIELDS must be a tuple of field names ("image_url", "url"), got {value!r}'
        )
    clash = LINE_FIELD_NAMES.intersection(value)
    if clash:
        raise ValueError(f"CART_LINE_FIELDS cannot name a line's own fields: {sorted(clash)}")
    return tuple(dict.fromkeys(value))


def link_redirect(value: object) -> str:
    """CART_LINK_REDIRECT: a path on this site ("/", "/cart") or an absolute http(s) URL."""
    if not isinstance(value, str) or not valid_redirect(value):
        raise ValueError(
            f'CART_LINK_REDIRECT must be a path ("/cart") or an http(s) URL, got {value!r}'
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


#: The most days a retention or a stage may be (100 years): a date that far back is still
#: a date, and the CLI options take the same bound.
MAX_DAYS = 36500
#: The longest stage of ``flask cart abandoned`` (10 years; a stage's seconds fit the
#: 32-bit column of the SQL claims table).
MAX_STAGE_DAYS = 3650
#: The most carts per batch of ``flask cart cleanup`` and ``flask cart abandoned``.
MAX_BATCH_SIZE = 100000


def check_days(value: object, name: str, *, positive: bool = False) -> float:
    """A number of days: > 0 with `positive` (a lifetime), else >= 0 (a cut-off); at most
    MAX_DAYS."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and (value > 0 if positive else value >= 0) and value <= MAX_DAYS:  # type: ignore[operator]
        return value  # type: ignore[return-value]  # int or float, as given
    bound = "> 0" if positive else ">= 0"
    raise ValueError(f"{name} must be a number of days {bound} and <= {MAX_DAYS}, got {value!r}")


def valid_redirect(url: str) -> bool:
    """A path on this site ("/", "/cart") or an absolute http(s) URL (for CART_LINK_REDIRECT)."""
    if not url or "\\" in url or not url.isprintable():
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.scheme and not parts.netloc:
        return url.startswith("/") and not url.startswith("//")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]{1,9})([smhd])", re.ASCII)


def parse_stage(text: str) -> Stage:
    """``30s``, ``15m``, ``1h``, ``2d`` as a Stage; ValueError for anything else or 0."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration: a whole number > 0 and a unit s, m, h or d "
            "(30s, 15m, 1h, 2d)"
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_STAGE_DAYS * 86400:
        raise ValueError(f"{text!r} is longer than {MAX_STAGE_DAYS} days")
    return Stage(text, seconds)


def parse_stages(values: Iterable[str]) -> tuple[Stage, ...]:
    """Stages sorted shortest first; none, a bad one, or two of one duration: ValueError."""
    stages = sorted(parse_stage(v) for v in values)
    if not stages:
        raise ValueError("at least one stage is needed")
    for a, b in itertools.pairwise(stages):
        if a.seconds == b.seconds:
            raise ValueError(f"stages {a.label} and {b.label} are the same duration")
    return tuple(stages)


__all__ = [
    "DEFAULTS",
    "LINE_FIELD_NAMES",
    "MAX_BATCH_SIZE",
    "MAX_DAYS",
    "MAX_STAGE_DAYS",
    "RESTORE_MODES",
    "Settings",
    "check_days",
    "check_line_fields",
    "link_redirect",
    "parse_stage",
    "parse_stages",
    "store_timeout",
    "valid_redirect",
]
