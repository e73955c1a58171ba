"""The store interface: every change is one atomic delta operation on the store."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..lines import CartState, Limits, Line, MergeOutcome, Owner

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from ..abandoned import AbandonedCart, BatchHook, Stage
    from ..cleanup import CartStats, CleanupResult, Progress


@dataclass(frozen=True)
class CartKey:
    """Where a cart lives: its owner's identifier and the instance ("cart", "wishlist")."""

    identifier: str
    instance: str = "cart"


#: How many recent change ids a cart remembers (a change resent with one of them is not
#: applied again). Idempotency keys from HTTP clients are change ids too.
MAX_REMEMBERED_OPS = 32

#: How many merge markers a cart keeps (the most recent): a merge is retried within minutes,
#: so a long-lived customer cart need not remember every guest cart it ever absorbed.
MAX_MERGE_MARKERS = 32


def new_op_id() -> str:
    """A unique id for one change, so a store can recognise a resent request."""
    return uuid.uuid4().hex[:16]


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

        Every change takes `op`, the change's id (a new one when None): a change whose id
        is among the cart's last MAX_REMEMBERED_OPS changes is not applied again, and the
        cart is answered as it is now."""

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
    ) -> MergeOutcome:
        """Merge lines into the cart once per `marker`: a repeated marker changes nothing."""

    @abstractmethod
    def get_ttl(self, key: CartKey) -> int:
        """Seconds until the cart expires; 0 when it does not exist."""

    @abstractmethod
    def set_ttl(self, key: CartKey, seconds: int) -> bool:
        """Set the cart's remaining lifetime; False when it does not exist."""

    def rekey(
        self, source: CartKey, target: CartKey, *, owner: Owner, limits: Limits
    ) -> CartState:
        """Move a cart to a new key (as after registration), leaving nothing at `source`."""
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
        )
        self.delete(source)
        return outcome.state

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release connections the store opened itself."""

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
    ) -> CleanupResult:
        """Delete the carts due under the cut-offs, in batches of at most `batch_size`.

        The condition is re-checked at delete time (a cart changed meanwhile survives) and
        two runs at once must delete each cart once. `dry_run` counts and deletes nothing.
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


def merge_marker(source: CartKey, state: CartState) -> str:
    """Names one merge of one sealed source cart, for idempotence."""
    return f"{source.identifier}:{source.instance}@{state.uid}.{state.version}"


def store_from_name(name: str) -> type[CartStore]:
    """A store class by short name ("redis", "sqlalchemy") or dotted path."""
    if name == "redis":
        from .redis import RedisStore

        return RedisStore
    if name in ("sqlalchemy", "sql"):
        from .sql import SQLStore

        return SQLStore
    from werkzeug.utils import import_string

    cls: Any = import_string(name)
    if not (isinstance(cls, type) and issubclass(cls, CartStore)):
        raise TypeError(f"{name!r} is not a CartStore subclass")
    return cls


def as_store(obj: object) -> CartStore:
    """A CartStore as is; a redis client wrapped in a RedisStore; an Engine in a SQLStore."""
    if isinstance(obj, CartStore):
        return obj
    module = type(obj).__module__
    if module.startswith("redis"):
        from .redis import RedisStore

        return RedisStore(obj)
    if module.startswith("sqlalchemy"):
        from .sql import SQLStore

        return SQLStore(obj)  # type: ignore[arg-type]
    raise TypeError(f"expected a CartStore or a redis client, got {type(obj).__name__}")
