"""Cleanup for the Redis store: statistics, expired carts and merge leftovers.

Key TTLs do the routine expiry. This pass removes what they do not: carts older than a
retention shorter than the TTL they were written with, and carts sealed by a merge that
was interrupted (``_s`` set) once they are past a short grace period.

The keys under the store's prefix are walked with ``SCAN`` (never ``KEYS``), one batch
of at most `batch_size` keys at a time. For each batch one pipeline fetches ``_u``
(last change, ms since epoch), ``_k`` (customer id, empty for a guest) and ``_s``
(sealed); a second pipeline runs, for each due cart, a small Lua script that reads those
fields again and deletes the key only if it is still due: a cart changed in between
survives, and a cart deleted by a concurrent cleanup is not counted twice. Each call
touches one key, so the scripts also run on Redis Cluster.

SCAN may return a key more than once while Redis resizes its table; a deletion is
counted once (the second script finds nothing), but statistics may then count a cart
twice: they are exact on a keyspace that is not growing or shrinking fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..cleanup import LEFTOVER_GRACE, CartStats, CleanupResult, Progress

if TYPE_CHECKING:
    from .redis import RedisStore

UTC = timezone.utc
KINDS = {1: "guest", 2: "customer", 3: "leftover"}

#: Deletes KEYS[1] if it is still due; answers 1 guest, 2 customer, 3 leftover, 0 kept.
#: ARGV: guest cut-off, customer cut-off, sealed cut-off (ms since epoch; due when older).
DELETE_IF_DUE = """
local f = redis.call('HMGET', KEYS[1], '_u', '_k', '_s')
local u = tonumber(f[1])
if not u then return 0 end
local kind = 0
if f[3] == '1' and u < tonumber(ARGV[3]) then
  kind = 3
elseif not f[2] or f[2] == '' then
  if u < tonumber(ARGV[1]) then kind = 1 end
elseif u < tonumber(ARGV[2]) then
  kind = 2
end
if kind > 0 then redis.call('DEL', KEYS[1]) end
return kind
"""

#: Called between reading a batch and deleting its due carts (tests touch a cart there).
BatchHook = Callable[[Sequence[Any]], None]


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def glob_escape(text: str) -> str:
    """`text` as a literal in a SCAN MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _batches(store: RedisStore, batch_size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    pattern = glob_escape(store.prefix) + "*"
    for key in store.client.scan_iter(match=pattern, count=batch_size, _type="hash"):
        batch.append(key)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _fields(store: RedisStore, keys: Sequence[Any]) -> list[Any]:
    with store.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, "_u", "_k", "_s")
        return list(pipe.execute())


def _classify(
    fields: Sequence[Any], guest_ms: int, customer_ms: int, sealed_ms: int
) -> tuple[int, bool, int] | None:
    """(last change in ms, is guest, due kind or 0); None for a hash that is not a cart."""
    updated, customer, sealed = fields
    try:
        u = int(updated)
    except (TypeError, ValueError):
        return None
    is_guest = not customer
    if sealed in (b"1", "1") and u < sealed_ms:
        return u, is_guest, 3
    if u < (guest_ms if is_guest else customer_ms):
        return u, is_guest, 1 if is_guest else 2
    return u, is_guest, 0


def cart_stats(
    store: RedisStore,
    *,
    now: datetime,
    guest_cutoff: datetime,
    customer_cutoff: datetime,
    sealed_cutoff: datetime | None = None,
    batch_size: int = 1000,
) -> CartStats:
    """Counts over every cart hash under the prefix; deletes nothing."""
    cut = (
        _ms(guest_cutoff),
        _ms(customer_cutoff),
        _ms(sealed_cutoff or now - LEFTOVER_GRACE),
    )
    day, week = _ms(now - timedelta(days=1)), _ms(now - timedelta(days=7))
    stats = CartStats()
    due = [0, 0, 0, 0]
    oldest: int | None = None
    with store._guard():
        for keys in _batches(store, batch_size):
            for fields in _fields(store, keys):
                seen = _classify(fields, *cut)
                if seen is None:
                    continue
                u, is_guest, kind = seen
                stats.total += 1
                stats.guest += is_guest
                stats.changed_24h += u >= day
                stats.changed_7d += u >= week
                if oldest is None or u < oldest:
                    oldest = u
                due[kind] += 1
    stats.customer = stats.total - stats.guest
    stats.due_guest, stats.due_customer, stats.due_leftover = due[1:]
    if oldest is not None:
        stats.oldest = datetime.fromtimestamp(oldest / 1000, UTC)
    return stats


def delete_expired(
    store: RedisStore,
    *,
    guest_cutoff: datetime,
    customer_cutoff: datetime,
    batch_size: int,
    dry_run: bool = False,
    progress: Progress | None = None,
    sealed_cutoff: datetime | None = None,
    on_batch: BatchHook | None = None,
) -> CleanupResult:
    """Delete the due carts batch by batch (or count them, with `dry_run`)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = datetime.now(UTC)
    cut = (
        _ms(guest_cutoff),
        _ms(customer_cutoff),
        _ms(sealed_cutoff or now - LEFTOVER_GRACE),
    )
    result = CleanupResult(dry_run=dry_run)
    with store._guard():
        sha = None if dry_run else store.client.script_load(DELETE_IF_DUE)
        for keys in _batches(store, batch_size):
            due: list[Any] = []
            for key, fields in zip(keys, _fields(store, keys), strict=True):
                seen = _classify(fields, *cut)
                if seen is not None and seen[2]:
                    if dry_run:
                        result.add(KINDS[seen[2]])
                    else:
                        due.append(key)
            if on_batch is not None:
                on_batch(due)
            if due and sha is not None:
                sha = _delete(store, sha, due, cut, result)
            result.examined += len(keys)
            result.batches += 1
            if progress is not None:
                progress(result.examined, None)
    return result


def _delete(
    store: RedisStore,
    sha: str,
    keys: Sequence[Any],
    cut: tuple[int, int, int],
    result: CleanupResult,
) -> str:
    """Run the script on each key; reload it once if the server lost it (SCRIPT FLUSH)."""
    from redis.exceptions import NoScriptError

    for attempt in range(2):
        with store.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.evalsha(sha, 1, key, *cut)
            answers = pipe.execute(raise_on_error=False)
        lost = []
        for key, answer in zip(keys, answers, strict=True):
            if isinstance(answer, NoScriptError) and attempt == 0:
                lost.append(key)
            elif isinstance(answer, Exception):
                raise answer
            elif answer:
                result.add(KINDS[int(answer)])
        if not lost:
            break
        sha = store.client.script_load(DELETE_IF_DUE)
        keys = lost
    return sha
