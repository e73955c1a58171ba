"""The store interface: every change is one atomic delta operation on the store."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import IdempotencyKeyReused
from ..lines import CartState, Limits, Line, MergeOutcome, Owner

UTC = timezone.utc

#: Called after each batch with (carts done so far, total or None when unknown).
Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class CartKey:
    """Where a cart lives: its owner's identifier and the instance ("cart", "wishlist")."""

    identifier: str
    instance: str = "cart"


#: How long a change sent with an id (an HTTP Idempotency-Key) is remembered, in seconds,
#: whatever else happens to the cart meanwhile: a resend inside it is not applied again.
KEY_SECONDS = 86400

#: How many merge markers a cart keeps (the most recent): a merge is retried within minutes,
#: so a long-lived customer cart need not remember every guest cart it ever absorbed. The
#: markers of signed links (``link:...``) do not count: they are kept as long as the cart.
MAX_MERGE_MARKERS = 32

#: Markers kept as long as the cart, and carried into the target cart of a merge.
LINK_MARKER_PREFIX = "link:"

#: How long a guest cart merged at a login stays as a tombstone (sealed, no lines, naming
#: the cart it went to), so that a change racing the login answers 409, in seconds.
TOMBSTONE_SECONDS = 3600

#: The merge marker of a tombstone: ``into:<identifier>:<instance>`` of the target cart.
TOMBSTONE_PREFIX = "into:"


def fingerprint(kind: str, *parts: object) -> str:
    """What one change asks for (its kind and arguments), to tell a resend of it from another
    change sent with the same id."""
    text = "\0".join([kind, *(str(p) for p in parts)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def link_markers(state: CartState) -> list[str]:
    """The cart's signed-link markers, which a merge carries into its target."""
    return sorted(m for m in state.merged if m.startswith(LINK_MARKER_PREFIX))


def tombstone_marker(target: CartKey) -> str:
    """The marker a tombstone keeps: where its lines went."""
    return f"{TOMBSTONE_PREFIX}{target.identifier}:{target.instance}"


def is_tombstone(state: CartState) -> bool:
    """True for a guest cart merged into another at a login (see CartStore.bury)."""
    return state.sealed and any(m.startswith(TOMBSTONE_PREFIX) for m in state.merged)


def new_op_id() -> str:
    """A unique id for one change, so a store can recognise a resent request."""
    return os.urandom(8).hex()  # 16 hex digits, 64 random bits


class CartStore(ABC):
    """Atomic, delta-based storage of carts.

    Each write returns the cart's new state with a store-assigned version that grows by
    at least one per change. A write never takes a whole cart computed elsewhere.
    """

    @abstractmethod
    def load(self, key: CartKey) -> CartState:
        """The cart as stored now (version 0 and no lines when absent or expired)."""

    @abstractmethod
    def add(
        self, key: CartKey, line: Line, *, owner: Owner, limits: Limits, op: str | None = None
    ) -> CartState:
        """Add `line.quantity` units to the line (created if new); its price and details win.

        Every change takes `op`, the change's id (None: a change no client resends). The
        id is recorded with the change, in the same atomic step, for KEY_SECONDS: a change
        resent with it is not applied again and the cart is answered as it is now; another
        change sent with it raises IdempotencyKeyReused and changes nothing."""

    @abstractmethod
    def set_quantity(
        self,
        key: CartKey,
        product_id: str,
        quantity: int,
        *,
        owner: Owner,
        limits: Limits,
        op: str | None = None,
    ) -> CartState:
        """Set a present line's quantity; 0 removes it."""

    @abstractmethod
    def remove(
        self, key: CartKey, product_id: str, *, owner: Owner, op: str | None = None
    ) -> tuple[bool, CartState]:
        """Remove a line; False when it was not there (and nothing changed).

        A repeated `op` answers (True, the cart now): the change was applied once."""

    @abstractmethod
    def clear(self, key: CartKey, *, owner: Owner, op: str | None = None) -> CartState:
        """Remove every line, keeping the cart (and its version history)."""

    @abstractmethod
    def delete(self, key: CartKey) -> bool:
        """Delete the cart; True when there was one."""

    @abstractmethod
    def take(
        self, key: CartKey, *, expect: CartState | None = None, session: Any = None
    ) -> CartState:
        """Atomically read and delete the cart (checkout): one caller gets the lines.

        With `expect`, the cart is removed only while it is still that cart (same uid) at
        that version; otherwise nothing is removed and the cart as it is now is answered.
        A cart sealed by a merge in progress raises CartClosed and stays. `session`, a
        SQLAlchemy session (SQL stores on that session's engine only): the removal runs in
        its transaction and commits or rolls back with it."""

    @abstractmethod
    def seal(self, key: CartKey) -> CartState:
        """Close the cart to further changes (before merging it away) and return it."""

    @abstractmethod
    def merge(
        self,
        key: CartKey,
        source: Mapping[str, Line],
        *,
        strategy: str,
        marker: str,
        owner: Owner,
        limits: Limits,
        line_caps: Mapping[str, int] | None = None,
        carry: CartKey | None = None,
    ) -> MergeOutcome:
        """Merge lines into the cart once per `marker`: a repeated marker changes nothing.

        `carry`: the (sealed) cart the lines come from; its change ids and signed-link
        markers are recorded in this cart in the same write, so a resend after the merge
        is recognised here."""

    def bury(self, key: CartKey, into: CartKey) -> None:
        """Replace a cart merged into `into` by a tombstone: sealed, no lines, naming `into`,
        for TOMBSTONE_SECONDS (then gone). A store without tombstones deletes the cart."""
        self.delete(key)

    def op_record(self, key: CartKey, op: str) -> str | None:
        """The fingerprint `op` was recorded with in the cart at `key` (a live record, within
        KEY_SECONDS), or None. A store that keeps no records answers None."""
        return None

    def applied(self, key: CartKey, op: str, kind: str, *parts: object) -> bool:
        """True when `op` was recorded for the change `kind` with arguments `parts` (as
        the store fingerprints them: "add" or "set", product id, quantity) in the cart at
        `key`: that change was applied. Another change recorded with `op` raises
        IdempotencyKeyReused; no record: False. One read."""
        seen = self.op_record(key, op)
        if seen is None:
            return False
        if seen != fingerprint(kind, *parts):
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for another change of this cart"
            )
        return True

    @abstractmethod
    def get_ttl(self, key: CartKey) -> int:
        """Seconds until the cart expires; 0 when it does not exist."""

    @abstractmethod
    def set_ttl(self, key: CartKey, seconds: int) -> bool:
        """Set the cart's remaining lifetime; False when it does not exist."""

    def rekey(
        self,
        source: CartKey,
        target: CartKey,
        *,
        owner: Owner,
        limits: Limits,
        tombstone: bool = False,
    ) -> CartState:
        """Move a cart to a new key (as after registration), its change ids and link markers
        with it, leaving at `source` a tombstone when `tombstone`, else nothing."""
        sealed = self.seal(source)
        if not sealed.exists:
            return self.load(target)
        outcome = self.merge(
            target,
            sealed.lines,
            strategy="sum",
            marker=merge_marker(source, sealed),
            owner=owner,
            limits=limits,
            carry=source,
        )
        if tombstone:
            self.bury(source, target)
        else:
            self.delete(source)
        return outcome.state

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release connections the store opened itself."""

    #: True when the store's tables are to be created on the first request that needs them
    #: (the SQLite default); ``CartManager.get_store`` does it once.
    create_on_first_use: bool = False

    def create_all(self) -> None:  # noqa: B027 - an optional hook
        """Create the store's tables where missing; a store without tables does nothing."""

    def cart_stats(
        self,
        *,
        now: datetime,
        guest_cutoff: datetime,
        customer_cutoff: datetime,
        sealed_cutoff: datetime | None = None,
    ) -> CartStats:
        """Totals over every cart, and how many changed last before their cut-off; no change.

        See flask_cart.cleanup: a cart is due when its last change is strictly before the
        cut-off of its kind; a merge-sealed cart, before `sealed_cutoff`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support cleanup")

    def delete_expired(
        self,
        *,
        guest_cutoff: datetime,
        customer_cutoff: datetime,
        batch_size: int,
        dry_run: bool = False,
        progress: Progress | None = None,
        sealed_cutoff: datetime | None = None,
        on_batch: Callable[[Sequence[Any]], None] | None = None,
    ) -> CleanupResult:
        """Delete the carts due under the cut-offs, in batches of at most `batch_size`.

        The condition is re-checked at delete time (a cart changed meanwhile survives) and
        two runs at once must delete each cart once. `dry_run` counts and deletes nothing.
        `on_batch` is called with each batch's keys between choosing and deleting it (tests
        change a cart there).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support cleanup")

    def claim_abandoned(
        self,
        *,
        stages: Sequence[Stage],
        now: datetime,
        limit: int | None,
        batch_size: int,
        dry_run: bool = False,
        on_batch: BatchHook | None = None,
    ) -> Iterator[list[AbandonedCart]]:
        """Claim the carts due for a stage (see flask_cart.abandoned), batch by batch.

        A cart with lines, not sealed, last changed before a stage's cut-off and not
        claimed for the latest stage it passed at its current uid and version is claimed
        for it, atomically and only while it is still the cart that was read; each batch
        (at most `batch_size`, at most `limit` in all) is yielded after its claims are
        recorded. `dry_run` claims nothing and yields what would be claimed.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support abandoned carts")

    def load_many(self, keys: Sequence[CartKey]) -> list[CartState]:
        """The carts at `keys` as they are now, in order (``flask cart abandoned`` re-reads
        a batch with it just before its reports). Stores answer it in one round trip."""
        return [self.load(key) for key in keys]

    def release_abandoned(self, reports: Sequence[AbandonedCart]) -> None:
        """Undo the claims of `reports` (their reminders could not be sent): the next run
        reports them again, unless the cart has changed meanwhile."""
        raise NotImplementedError(f"{type(self).__name__} does not support abandoned carts")

    def set_email(self, key: CartKey, email: str | None) -> bool:
        """Keep (None: forget) a contact address with the cart at `key` as it is now (a
        cart made again at the key starts without one); False when there is no cart."""
        raise NotImplementedError(f"{type(self).__name__} does not keep contact addresses")

    def unsubscribe(self, key: CartKey, uid: str) -> bool:
        """Stop reminders for the cart at `key` while it is the cart `uid` names (changes
        keep the flag); False when that cart is gone."""
        raise NotImplementedError(f"{type(self).__name__} does not keep contact addresses")

    def contacts(self, keys: Sequence[CartKey], uids: Sequence[str]) -> list[Contact]:
        """The contact of each cart at `keys` that still has the uid given in `uids`."""
        return [Contact() for _ in keys]

    def reread_abandoned(self, keys: Sequence[CartKey]) -> list[tuple[CartState, Contact]]:
        """Each cart at `keys` as it is now, with its contact (``flask cart abandoned`` reads
        a slice of claimed carts with it just before their reports). Stores answer it in one
        round trip."""
        states = self.load_many(keys)
        return list(zip(states, self.contacts(keys, [s.uid for s in states]), strict=True))


#: Called with the keys of a batch between reading it and claiming it (tests change a
#: cart there).
BatchHook = Callable[[list[CartKey]], None]


@dataclass(frozen=True, order=True)
class Stage:
    """A stage of idleness: its label as written (``"24h"``) and its length in seconds."""

    label: str = field(compare=False)
    seconds: int

    def cutoff(self, now: datetime) -> datetime:
        """A cart last changed strictly before this is past the stage."""
        return now - timedelta(seconds=self.seconds)


Window = tuple[Stage, "datetime | None", datetime]


def windows(stages: Sequence[Stage], now: datetime) -> list[Window]:
    """(stage, lower bound or None, upper bound) per stage, latest stage first: a cart whose
    last change is in ``[lower, upper)`` has that stage as the latest it passed."""
    ordered = sorted(stages)
    out: list[Window] = []
    for i, stage in enumerate(ordered):
        lower = ordered[i + 1].cutoff(now) if i + 1 < len(ordered) else None
        out.append((stage, lower, stage.cutoff(now)))
    return out[::-1]


def report_id(key: CartKey, state: CartState, stage: Stage) -> str:
    """The stable id of one report: the same cart, version and stage give the same id."""
    text = "\0".join(
        (key.identifier, key.instance, str(stage.seconds), state.uid, str(state.version))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Contact:
    """What a cart keeps for its reminders: a guest's address, and whether they stopped."""

    email: str | None = None
    unsubscribed: bool = False


@dataclass(frozen=True)
class AbandonedCart:
    """One report: the cart as read when it was claimed, and the stage it is reported for."""

    key: CartKey
    state: CartState
    stage: Stage
    report_id: str


def utc_iso(value: datetime | None) -> str | None:
    """``2026-11-22T10:00:00Z`` (seconds precision), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@dataclass
class CartStats:
    """Totals over every cart in a store, and how many are due under the given retention."""

    total: int = 0
    guest: int = 0
    customer: int = 0
    changed_24h: int = 0
    changed_7d: int = 0
    oldest: datetime | None = None
    due_guest: int = 0
    due_customer: int = 0
    due_leftover: int = 0

    @property
    def due_total(self) -> int:
        return self.due_guest + self.due_customer + self.due_leftover

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "guest": self.guest,
            "customer": self.customer,
            "changed_24h": self.changed_24h,
            "changed_7d": self.changed_7d,
            "oldest": utc_iso(self.oldest),
            "due": {
                "guest": self.due_guest,
                "customer": self.due_customer,
                "leftover": self.due_leftover,
                "total": self.due_total,
            },
        }


@dataclass
class CleanupResult:
    """What one cleanup deleted (or, with ``dry_run``, would delete), by kind."""

    guest: int = 0
    customer: int = 0
    leftover: int = 0
    examined: int = 0
    batches: int = 0
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.guest + self.customer + self.leftover

    def add(self, kind: str, n: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + n)

    def as_dict(self) -> dict[str, Any]:
        counts = {
            "guest": self.guest,
            "customer": self.customer,
            "leftover": self.leftover,
            "total": self.total,
        }
        return {
            "dry_run": self.dry_run,
            ("would_delete" if self.dry_run else "deleted"): counts,
            "examined": self.examined,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
        }


def merge_marker(source: CartKey, state: CartState) -> str:
    """Names one merge of one sealed source cart, for idempotence."""
    return f"{source.identifier}:{source.instance}@{state.uid}.{state.version}"
