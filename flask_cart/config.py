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
from typing import Any
from urllib.parse import urlsplit

from .lines import Limits, check_strategy
from .stores.base import Stage

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


def check_days(value: object, name: str, *, positive: bool = False) -> float:
    """A number of days: > 0 with `positive` (a lifetime), else >= 0 (a cut-off)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and (value > 0 if positive else value >= 0):  # type: ignore[operator]
        return value  # type: ignore[return-value]  # int or float, as given
    bound = "> 0" if positive else ">= 0"
    raise ValueError(f"{name} must be a number of days {bound}, got {value!r}")


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
    return Stage(text, int(match.group(1)) * _UNITS[match.group(2)])


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
    "RESTORE_MODES",
    "Settings",
    "check_days",
    "link_redirect",
    "parse_stage",
    "parse_stages",
    "store_timeout",
    "valid_redirect",
]
