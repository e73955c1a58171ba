"""Cleanup for the Redis store: statistics and expired carts.

Key TTLs do the routine expiry. This pass removes what they do not: carts older than a
retention shorter than the TTL they were written with. A cart sealed by a merge that was
interrupted (``_s`` set) is kept under its kind's retention like any cart, as on the SQL
store: the merge retried at the owner's next login needs it.

The keys under the store's prefix are walked with ``SCAN`` (never ``KEYS``), one batch
of at most `batch_size` keys at a time. Each batch goes to one small Lua script that,
for each key, reads ``_u`` (last change, ms since epoch) and ``_k`` (customer id, empty
for a guest), decides whether the cart is due, and in "delete" mode
deletes it there and then. The decision is made at delete time, inside the script, so
a cart changed after its batch was scanned survives, and a cart deleted by a concurrent
cleanup is neither deleted nor counted twice. The script answers with the batch's
totals, so nothing per cart travels back to the client. Redis runs one script at a
time: `batch_size` bounds how long it is busy with one (about 3 ms per 1,000 carts).

On Redis Cluster, where the keys of a batch live in many slots, the same script runs
once per key, pipelined as EVAL (a cluster pipeline refuses EVALSHA); the client adds up
the answers.

Why not a pipelined HMGET per cart, then a script for the due ones: that spends the
client's CPU on one command per cart, and measured 68 s (over the 60 s target) for
1,000,000 expired carts among 2,000,000; this way takes a fraction of that
(bench/RESULTS.md).

SCAN may return a key more than once while Redis resizes its table; a deletion is
counted once (the second look finds nothing), but statistics may then count a cart
twice: they are exact on a keyspace that is not growing or shrinking fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .base import CartStats, CleanupResult, Progress

if TYPE_CHECKING:
    from .redis import RedisStore

UTC = timezone.utc

#: KEYS: carts. ARGV: mode ("count" or "delete"), then cut-offs in ms since epoch: guest,
#: customer (a cart is due when its last change is older), changed-since-24 h,
#: changed-since-7 d. Answers {carts, guests, changed 24 h, changed 7 d, oldest change
#: (-1 when none), due guests, due customers, 0 (leftovers: none since sealed carts age
#: like any other)}; in "delete" mode the due carts are deleted. A key that is not a cart
#: (no ``_u``, or not a hash) is left alone, and so is a login merge's tombstone (no
#: ``_v``), which its own TTL removes within the hour.
CLEANUP_SCRIPT = """
local delete = ARGV[1] == 'delete'
local guest, customer = tonumber(ARGV[2]), tonumber(ARGV[3])
local day, week = tonumber(ARGV[4]), tonumber(ARGV[5])
local r = {0, 0, 0, 0, -1, 0, 0, 0}
for _, key in ipairs(KEYS) do
  local f = redis.pcall('HMGET', key, '_u', '_k', '_v')
  local u = nil
  if type(f) == 'table' and not f.err and f[3] then u = tonumber(f[1]) end
  if u then
    local is_guest = not f[2] or f[2] == ''
    r[1] = r[1] + 1
    if is_guest then r[2] = r[2] + 1 end
    if u >= day then r[3] = r[3] + 1 end
    if u >= week then r[4] = r[4] + 1 end
    if r[5] < 0 or u < r[5] then r[5] = u end
    local kind = 0
    if is_guest then
      if u < guest then kind = 1 end
    elseif u < customer then
      kind = 2
    end
    if kind > 0 then
      r[5 + kind] = r[5 + kind] + 1
      if delete then redis.call('DEL', key) end
    end
  end
end
return r
"""

#: Called between scanning a batch and running the script on it (tests touch a cart there).
BatchHook = Callable[[Sequence[Any]], None]


def ms_since_epoch(value: datetime) -> int:
    """A moment as whole milliseconds since the Unix epoch (as the Redis scripts compare)."""
    return int(value.timestamp() * 1000)


def glob_escape(text: str) -> str:
    """`text` as a literal in a SCAN MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def is_ops_key(key: bytes | str) -> bool:
    """True for ``<prefix>{<identifier>}:<instance>:ops`` (a cart's change-id records, see
    stores/redis.py), whose identifier and instance are percent-encoded: a cart's own key
    has one ``:`` after the hash tag, this one two."""
    text = key.decode() if isinstance(key, bytes) else key
    return text.rpartition("}")[2].count(":") == 2


def is_cluster(client: Any) -> bool:
    try:
        from redis.cluster import RedisCluster
    except ImportError:  # pragma: no cover - redis-py without cluster support
        return False
    return isinstance(client, RedisCluster)


class _Batches:
    """SCAN the store's prefix in batches and run the script on each, adding up answers."""

    def __init__(
        self,
        store: RedisStore,
        *,
        mode: str,
        cutoffs: Sequence[datetime],
        batch_size: int,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.store = store
        self.client = store.client
        self.args = [mode, *(ms_since_epoch(c) for c in cutoffs)]
        self.batch_size = batch_size
        self.per_key = is_cluster(self.client)
        self.sha = ""
        self.totals = [0, 0, 0, 0, -1, 0, 0, 0]
        self.scanned = 0
        self.batches = 0

    def batches_of_keys(self) -> Iterator[list[Any]]:
        batch: list[Any] = []
        pattern = glob_escape(self.store.prefix) + "*"
        for key in self.client.scan_iter(match=pattern, count=self.batch_size, _type="hash"):
            if is_ops_key(key):
                continue  # a cart's change-id records: gone with their own TTL
            batch.append(key)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def run(self, keys: Sequence[Any]) -> None:
        """The script on `keys` (reloaded once if the server lost it, e.g. SCRIPT FLUSH)."""
        from redis.exceptions import NoScriptError

        if self.per_key:  # EVAL: a cluster pipeline refuses EVALSHA
            self._add_all(self._call(keys), keys)
            return
        if not self.sha:
            self.sha = self.client.script_load(CLEANUP_SCRIPT)
        try:
            answers = self._call(keys)
        except NoScriptError:
            self.sha = self.client.script_load(CLEANUP_SCRIPT)
            answers = self._call(keys)
        self._add_all(answers, keys)

    def _add_all(self, answers: list[Any], keys: Sequence[Any]) -> None:
        for answer in answers:
            self._add([int(n) for n in answer])
        self.scanned += len(keys)
        self.batches += 1

    def _call(self, keys: Sequence[Any]) -> list[Any]:
        if not self.per_key:
            return [self.client.evalsha(self.sha, len(keys), *keys, *self.args)]
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("EVAL", CLEANUP_SCRIPT, 1, key, *self.args)
            return list(pipe.execute())

    def _add(self, answer: list[int]) -> None:
        totals = self.totals
        for i in (0, 1, 2, 3, 5, 6, 7):
            totals[i] += answer[i]
        if answer[4] >= 0 and (totals[4] < 0 or answer[4] < totals[4]):
            totals[4] = answer[4]

    def stats(self) -> CartStats:
        t = self.totals
        return CartStats(
            total=t[0],
            guest=t[1],
            customer=t[0] - t[1],
            changed_24h=t[2],
            changed_7d=t[3],
            oldest=datetime.fromtimestamp(t[4] / 1000, UTC) if t[4] >= 0 else None,
            due_guest=t[5],
            due_customer=t[6],
            due_leftover=t[7],
        )


def _cutoffs(now: datetime, guest_cutoff: datetime, customer_cutoff: datetime) -> list[datetime]:
    return [guest_cutoff, customer_cutoff, now - timedelta(days=1), now - timedelta(days=7)]


def cart_stats(
    store: RedisStore,
    *,
    now: datetime,
    guest_cutoff: datetime,
    customer_cutoff: datetime,
    sealed_cutoff: datetime | None = None,
    batch_size: int = 1000,
) -> CartStats:
    """Counts over every cart hash under the prefix; deletes nothing.

    `sealed_cutoff` is accepted for the interface and unused: sealed carts age by kind.
    """
    walk = _Batches(
        store,
        mode="count",
        cutoffs=_cutoffs(now, guest_cutoff, customer_cutoff),
        batch_size=batch_size,
    )
    with store._guard():
        for keys in walk.batches_of_keys():
            walk.run(keys)
    return walk.stats()


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
    """Delete the due carts batch by batch (or count them, with `dry_run`); `sealed_cutoff`
    is unused, as in cart_stats."""
    walk = _Batches(
        store,
        mode="count" if dry_run else "delete",
        cutoffs=_cutoffs(datetime.now(UTC), guest_cutoff, customer_cutoff),
        batch_size=batch_size,
    )
    with store._guard():
        for keys in walk.batches_of_keys():
            if on_batch is not None:
                on_batch(keys)
            walk.run(keys)
            if progress is not None:
                progress(walk.scanned, None)
    stats = walk.stats()
    return CleanupResult(
        guest=stats.due_guest,
        customer=stats.due_customer,
        leftover=stats.due_leftover,
        examined=walk.scanned,
        batches=walk.batches,
        dry_run=dry_run,
    )
