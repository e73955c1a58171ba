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

The window that remains: a run killed after a batch's claims were recorded and before
their signals were sent (SIGKILL, power loss) leaves those reports claimed and unsent;
the next run does not send them (at most once). The carts come up again at their next
stage, or after their next change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .cart import line_json, state_total
from .cleanup import store_now
from .lines import money_str
from .stores.base import AbandonedCart, BatchHook, CartStore, Stage, utc_iso

DEFAULT_BATCH_SIZE = 1000


@dataclass
class AbandonedResult:
    """What one run reported (or, with ``dry_run``, would report), per stage label."""

    by_stage: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.by_stage.values())

    def summary(self) -> str:
        verb = "would report" if self.dry_run else "reported"
        parts = ", ".join(f"{label}: {n}" for label, n in self.by_stage.items())
        noun = "cart" if self.total == 1 else "carts"
        return f"{verb} {self.total} {noun} ({parts}); {self.seconds:.1f} s"

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "total": self.total,
            "by_stage": dict(self.by_stage),
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
    if type(batch_size) is not int or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
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


def report_json(report: AbandonedCart, recovery_url: str | None) -> dict[str, Any]:
    """One report as ``flask cart abandoned --json`` prints it."""
    state = report.state
    return {
        "identifier": report.key.identifier,
        "instance": report.key.instance,
        "customer_id": state.customer_id,
        "stage": report.stage.label,
        "updated_at": utc_iso(state.updated_at),
        "total": money_str(state_total(state)),
        "items": [line_json(line) for line in state.lines.values()],
        "recovery_url": recovery_url,
        "report_id": report.report_id,
    }
