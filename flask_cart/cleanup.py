"""Removing expired carts: the retention rules, the results, and the store-independent steps.

A cart's age is the time since it last changed (``updated_at``), never since it was
created: a cart in use is never deleted. Guest carts and customer carts have separate
retentions (``CART_GUEST_DAYS``, ``CART_CUSTOMER_DAYS``). A cart is due when it is
strictly older than its retention. A cart sealed by a merge that was interrupted ages
like any cart of its kind: the merge retried at the next login needs it. The *leftover*
counts (and ``sealed_cutoff``) are for a store that removes such carts sooner; the
built-in stores report 0.

Each store implements two methods of :class:`~flask_cart.stores.base.CartStore`:
``cart_stats`` (counts, deletes nothing) and ``delete_expired`` (batched, re-checking the
expiry condition at delete time, so a cart touched meanwhile survives). This module picks
the cut-off times, runs them, and formats what they return.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .config import MAX_BATCH_SIZE, check_days
from .stores.base import CartStats, CartStore, CleanupResult, Progress, utc_iso

UTC = timezone.utc

#: A merge-sealed cart younger than this may belong to a merge still running.
LEFTOVER_GRACE = timedelta(hours=1)
DEFAULT_BATCH_SIZE = 1000

KINDS = ("guest", "customer", "leftover")


@dataclass(frozen=True)
class Retention:
    """How long carts live after their last change, and the cut-offs that follow at `now`."""

    guest_days: float = 30
    customer_days: float = 90
    leftover_grace: timedelta = LEFTOVER_GRACE

    def __post_init__(self) -> None:
        for name in ("guest_days", "customer_days"):
            check_days(getattr(self, name), name)

    def cutoffs(self, now: datetime) -> Cutoffs:
        return Cutoffs(
            now=now,
            guest=now - timedelta(days=self.guest_days),
            customer=now - timedelta(days=self.customer_days),
            sealed=now - self.leftover_grace,
        )


@dataclass(frozen=True)
class Cutoffs:
    """A cart last changed strictly before its cut-off is due for deletion."""

    now: datetime
    guest: datetime
    customer: datetime
    sealed: datetime


def store_now(store: CartStore) -> datetime:
    """The store's idea of now (its ``clock`` when it has one), timezone-aware UTC."""
    clock = getattr(store, "clock", None)
    now = clock() if callable(clock) else datetime.now(UTC)
    if not isinstance(now, datetime):
        now = datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def collect_stats(
    store: CartStore, retention: Retention, *, now: datetime | None = None
) -> CartStats:
    """The store's totals; deletes nothing."""
    cut = retention.cutoffs(now or store_now(store))
    return store.cart_stats(
        now=cut.now,
        guest_cutoff=cut.guest,
        customer_cutoff=cut.customer,
        sealed_cutoff=cut.sealed,
    )


def run_cleanup(
    store: CartStore,
    retention: Retention,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> CleanupResult:
    """Delete the carts past their retention (or count them, with `dry_run`)."""
    if type(batch_size) is not int or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be an int in [1, {MAX_BATCH_SIZE}], got {batch_size!r}")
    cut = retention.cutoffs(now or store_now(store))
    started = time.monotonic()
    result = store.delete_expired(
        guest_cutoff=cut.guest,
        customer_cutoff=cut.customer,
        sealed_cutoff=cut.sealed,
        batch_size=batch_size,
        dry_run=dry_run,
        progress=progress,
    )
    result.dry_run = dry_run
    result.seconds = time.monotonic() - started
    return result


def stats_lines(stats: CartStats, retention: Retention) -> list[str]:
    """Human-readable statistics, one fact per line."""
    return [
        f"carts:              {stats.total}",
        f"  guest:            {stats.guest}",
        f"  customer:         {stats.customer}",
        f"changed in 24 h:    {stats.changed_24h}",
        f"changed in 7 days:  {stats.changed_7d}",
        f"oldest change:      {utc_iso(stats.oldest) or '-'}",
        f"due for deletion:   {stats.due_total} ("
        f"{stats.due_guest} guest > {retention.guest_days} d, "
        f"{stats.due_customer} customer > {retention.customer_days} d, "
        f"{stats.due_leftover} merge leftovers)",
    ]


def summary_line(result: CleanupResult, retention: Retention) -> str:
    """One line saying what a cleanup did."""
    verb = "would delete" if result.dry_run else "deleted"
    return (
        f"{verb} {result.total} carts: {result.guest} guest (> {retention.guest_days} d), "
        f"{result.customer} customer (> {retention.customer_days} d), "
        f"{result.leftover} merge leftovers; {result.seconds:.1f} s"
    )
