"""Abandoned carts: stages, reports, and the store-independent steps of ``flask cart abandoned``.

A cart with lines whose last change is older than a stage is *due* for that stage. When a
cart is past several stages at once (a cart idle for 80 h on a first run with stages 1 h,
24 h and 72 h), only the **latest stage it passed** is reported: one e-mail, not three.
The earlier stages are not reported later either (a cart only grows older until it
changes), so each cart is reported at most once per stage per version.

Exactly once: a store records a claim per (cart, stage, version) atomically, only while
the cart is still the one it read (same uid and version), before the report is sent. A
change gives the cart a new version, so every stage is due again once it ages; a cart
checked out, merged away (sealed) or deleted is never reported. Each report carries a
stable ``report_id`` (from identifier, instance, stage, uid and version) that receivers
can de-duplicate on.

Right before its report, each claimed cart is read again (`CartStore.reread_abandoned`, a
slice of carts per round trip, at most about RECHECK_WINDOW seconds before their reports
go out, see report_slices): a cart checked out, merged, deleted or changed since it was
read is left out (its claim names the version read, so it does not hold back a report of
the cart as it is now). The cart is then
re-priced through the app's product loader (a `Catalog` per run: one loader call per
product per run) and reported at today's prices, in the currency's minor unit; a cart with
no available line, or whose reminders were stopped (its unsubscribe link), is left out.

A run that fails half-way (the mail server goes away, an interrupt) releases the claims of
its batch's reports not yet sent (`CartStore.release_abandoned`), and so does a reminder
the mail server refused: the next run reports them again. The window that remains: a run
killed outright (SIGKILL, power loss) after a batch's claims were recorded leaves that
batch claimed and unsent; the next run does not send them (at most once). Those carts come
up again at their next stage, or after their next change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from werkzeug.routing import BuildError

from .catalog import Catalog
from .cleanup import store_now
from .config import MAX_BATCH_SIZE, parse_stages
from .errors import CartError
from .lines import CartState, money_str
from .recovery import recovery_links
from .reminders import unsubscribe_links
from .stores.base import AbandonedCart, BatchHook, CartStore, Contact, Stage, utc_iso
from .totals import is_available, line_json, state_total

DEFAULT_BATCH_SIZE = 1000
#: Claimed carts are read again just before their reports, a slice per round trip: the
#: first slice has this many carts, each next one as many as RECHECK_WINDOW seconds of the
#: last slice's reports covered.
RECHECK_FIRST = 50
RECHECK_WINDOW = 0.25


@dataclass
class AbandonedResult:
    """What one run reported (or, with ``dry_run``, would report), per stage label."""

    by_stage: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    seconds: float = 0.0
    #: Claimed carts left out: changed, gone or checked out since, or nothing available.
    left_out: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_stage.values())

    def summary(self) -> str:
        verb = "would report" if self.dry_run else "reported"
        parts = ", ".join(f"{label}: {n}" for label, n in self.by_stage.items())
        noun = "cart" if self.total == 1 else "carts"
        left = f"; {self.left_out} left out (changed, gone or nothing available)"
        return (
            f"{verb} {self.total} {noun} ({parts}){left if self.left_out else ''}; "
            f"{self.seconds:.1f} s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "total": self.total,
            "by_stage": dict(self.by_stage),
            "left_out": self.left_out,
            "seconds": round(self.seconds, 3),
        }


def run_abandoned(
    store: CartStore,
    *,
    stages: Sequence[Stage],
    dry_run: bool = False,
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
    on_batch: BatchHook | None = None,
) -> Iterator[list[AbandonedCart]]:
    """The store's due carts, claimed batch by batch (only read, with `dry_run`).

    Each batch is claimed in the store before it is yielded: send its reports before
    asking for the next batch, so a run killed half-way leaves at most one batch claimed
    and unsent.
    """
    if type(batch_size) is not int or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be an int in [1, {MAX_BATCH_SIZE}], got {batch_size!r}")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")
    if not stages:
        raise ValueError("at least one stage is needed")
    return store.claim_abandoned(
        stages=tuple(sorted(stages)),
        now=now or store_now(store),
        dry_run=dry_run,
        limit=limit,
        batch_size=batch_size,
        on_batch=on_batch,
    )


def timed(started: float) -> float:
    return time.monotonic() - started


@dataclass(frozen=True)
class Reminder:
    """A report ready to go out: the cart as read again and re-priced, and its contact."""

    report: AbandonedCart
    contact: Contact

    @property
    def email(self) -> str | None:
        """The guest's address (None for a customer's cart: the shop knows theirs)."""
        return self.contact.email if self.report.state.customer_id is None else None


def still_due(reported: CartState, now: CartState) -> bool:
    """The cart read now is the one claimed: there, not sealed, same uid and version."""
    return (
        now.exists
        and not now.sealed
        and now.uid == reported.uid
        and now.version == reported.version
        and bool(now.lines)
    )


def fresh_reports(
    store: CartStore, batch: Sequence[AbandonedCart], catalog: Catalog, *, recheck: bool = True
) -> list[Reminder]:
    """`batch` as the carts are now, with their contacts (one `reread_abandoned`; with
    `recheck` False, as read, and one `contacts` read), re-priced through `catalog`; carts
    that changed or went, whose reminders were stopped, or that have no available line are
    left out."""
    keys = [r.key for r in batch]
    if recheck:
        found = store.reread_abandoned(keys)
    else:
        states = [r.state for r in batch]
        found = list(zip(states, store.contacts(keys, [s.uid for s in states]), strict=True))
    out = []
    for report, (state, contact) in zip(batch, found, strict=True):
        if contact.unsubscribed or not still_due(report.state, state):
            continue
        view = catalog.reprice(state)
        if any(is_available(line) for line in view.lines.values()):
            out.append(Reminder(replace(report, state=view), contact))
    return out


def report_slices(
    store: CartStore, batch: Sequence[AbandonedCart], catalog: Catalog, *, recheck: bool = True
) -> Iterator[tuple[list[Reminder], int]]:
    """`batch` in slices, each read again (see fresh_reports) only when its turn comes:
    (the slice's reminders, how many were left out).

    The first slice has RECHECK_FIRST carts; each next one as many as the last slice's
    reports took RECHECK_WINDOW seconds for (at least 1): a cart is read again at most about
    that long before its report, however slow the reports are (an e-mail each), and fast
    runs make one read per batch.
    """
    start, size = 0, RECHECK_FIRST
    while start < len(batch):
        part = batch[start : start + size]
        began = time.monotonic()
        fresh = fresh_reports(store, part, catalog, recheck=recheck)
        yield fresh, len(part) - len(fresh)  # the caller reports them before resuming
        per_cart = (time.monotonic() - began) / len(part)
        start += len(part)
        size = max(1, int(RECHECK_WINDOW / per_cart)) if per_cart > 0 else len(batch)


def report_json(
    report: AbandonedCart,
    recovery_url: str | None,
    *,
    unit: Decimal | None = None,
    email: str | None = None,
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    """One report as ``flask cart abandoned --json`` prints it (with `unit`, the currency's
    minor unit: money rounded half-up to it)."""
    state = report.state
    return {
        "identifier": report.key.identifier,
        "instance": report.key.instance,
        "customer_id": state.customer_id,
        "email": email,
        "stage": report.stage.label,
        "updated_at": utc_iso(state.updated_at),
        "total": money_str(state_total(state, unit)),
        "items": [line_json(line, unit) for line in state.lines.values()],
        "recovery_url": recovery_url,
        "unsubscribe_url": unsubscribe_url,
        "report_id": report.report_id,
    }


def preview_reports(
    manager: Any,
    stages: Sequence[str] | None = None,
    *,
    limit: int | None = 200,
    with_links: bool = False,
) -> list[dict[str, Any]]:
    """See CartManager.abandoned_reports: a dry run's reports, re-priced, in JSON form."""
    settings = manager.settings()
    chosen = parse_stages(stages) if stages is not None else settings.abandoned_stages
    make_link = make_unsubscribe = None
    if with_links:
        try:
            make_link = recovery_links(manager)
            make_unsubscribe = unsubscribe_links()
        except (RuntimeError, BuildError):
            make_link = make_unsubscribe = None
    store = manager.get_store()
    catalog = Catalog(manager.loader, settings)
    out = []
    for batch in run_abandoned(store, stages=chosen, dry_run=True, limit=limit):
        for reminder in fresh_reports(store, batch, catalog, recheck=False):
            report = reminder.report
            url: str | None = None
            unsubscribe_url: str | None = None
            if make_link is not None:
                try:
                    url = make_link(report.key.identifier, report.key.instance)
                except CartError:  # no link can name this cart
                    url = None
            if make_unsubscribe is not None:
                unsubscribe_url = make_unsubscribe(report.key, report.state.uid)
            out.append(
                report_json(
                    report,
                    url,
                    unit=settings.money_quantum,
                    email=reminder.email,
                    unsubscribe_url=unsubscribe_url,
                )
            )
    return out
