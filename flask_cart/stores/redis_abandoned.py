"""Abandoned carts on the Redis store: the claim is a field of the cart's own hash.

A claim is the field ``a:<stage seconds>`` holding the version it was made at. The change
scripts never touch it; every change raises ``_v``, so an older claim no longer matches
and the stage is due again. The field lives and dies with the cart: the same TTL, gone
with a checkout, a deletion or a cleanup (a cart made again at the same key has no
claims). Cleanup and the decoder ignore it.

The keys under the prefix are walked with ``SCAN`` (never ``KEYS``), `batch_size` at a
time; each batch goes to one Lua script (one per cart in a pipeline on Redis Cluster)
that, for each cart, reads its last change, version and seal, picks the latest stage it
passed, and, when that stage is not claimed at this version and the cart has lines,
records the claim and answers the cart (the store's packed form, decoded with
redis.decode_hash). Reading and claiming are one atomic step, so a cart changed meanwhile
is either read and claimed before the change or read after it; two runs at once claim
each report once. The SCAN reads one batch ahead in a thread (flask_cart.stores.read_ahead;
not on a cluster client): it claims nothing, so claims stay one batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..lines import CartState
from .base import AbandonedCart, BatchHook, CartKey, Stage, report_id
from .read_ahead import read_ahead
from .redis_cleanup import glob_escape, is_cluster, ms_since_epoch

if TYPE_CHECKING:
    from .redis import RedisStore

#: KEYS: carts. ARGV: mode ("claim" or "peek"), the most carts to answer, then per stage,
#: latest first: its cut-off (ms since epoch; a cart last changed before it passed the
#: stage) and its seconds. Answers one string (one reply to parse, not three per cart):
#: per cart ``<stage seconds>:<key length>:<packed length>:<key><packed cart>``.
CLAIM_SCRIPT = """
local claim = ARGV[1] == 'claim'
local most = tonumber(ARGV[2])
local out = {}
local n = 0
for _, key in ipairs(KEYS) do
  if n >= most then break end
  local f = redis.pcall('HMGET', key, '_u', '_v', '_s')
  if type(f) == 'table' and not f.err then
    local u, v = tonumber(f[1]), f[2]
    if u and v and f[3] ~= '1' then
      local stage = nil
      for j = 3, #ARGV, 2 do
        if u < tonumber(ARGV[j]) then stage = ARGV[j + 1] break end
      end
      if stage and redis.call('HGET', key, 'a:' .. stage) ~= v then
        local flat = redis.call('HGETALL', key)
        local parts, lines = {}, false
        for j = 1, #flat, 2 do
          if flat[j] ~= '_o' then
            parts[#parts + 1] = flat[j]
            parts[#parts + 1] = flat[j + 1]
            if string.sub(flat[j], 1, 2) == 'l:' then lines = true end
          end
        end
        if lines then
          if claim then redis.call('HSET', key, 'a:' .. stage, v) end
          local packed = table.concat(parts, '\\0')
          out[#out + 1] = stage .. ':' .. #key .. ':' .. #packed .. ':' .. key .. packed
          n = n + 1
        end
      end
    end
  end
end
return table.concat(out)
"""


def records(answer: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    """(key, stage seconds, packed cart) of each cart in CLAIM_SCRIPT's answer."""
    pos, end = 0, len(answer)
    while pos < end:
        a = answer.index(b":", pos)
        b = answer.index(b":", a + 1)
        c = answer.index(b":", b + 1)
        key_end = c + 1 + int(answer[a + 1 : b])
        packed_end = key_end + int(answer[b + 1 : c])
        yield answer[c + 1 : key_end], int(answer[pos:a]), answer[key_end:packed_end]
        pos = packed_end


class _Wire:
    """The client's encoding: the claim script's answer counts the server's bytes, so a
    client that decodes responses has its string turned back into bytes, and each part
    decoded again, with its own encoding."""

    def __init__(self, client: Any) -> None:
        encoder = client.get_encoder() if hasattr(client, "get_encoder") else None
        self.decodes = bool(getattr(encoder, "decode_responses", False))
        self.encoding = getattr(encoder, "encoding", "utf-8")
        self.errors = getattr(encoder, "encoding_errors", "strict")

    def raw(self, answer: Any) -> bytes:
        if isinstance(answer, str):
            return answer.encode(self.encoding, self.errors)
        return bytes(answer)

    def text(self, part: bytes) -> Any:
        return part.decode(self.encoding, self.errors) if self.decodes else part


def key_of(store: RedisStore, raw: Any) -> CartKey:
    """The CartKey a cart's Redis key names (the inverse of RedisStore.key)."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    body = text[len(store.prefix) :]
    identifier, _, instance = body[1:].partition("}:")
    return CartKey(unquote(identifier), unquote(instance))


def claim_abandoned(
    store: RedisStore,
    *,
    decode: Callable[[Any], CartState],
    stages: Sequence[Stage],
    now: datetime,
    limit: int | None,
    batch_size: int,
    dry_run: bool = False,
    on_batch: BatchHook | None = None,
) -> Iterator[list[AbandonedCart]]:
    """See CartStore.claim_abandoned; `decode` reads a cart's hash (redis.decode_hash)."""
    by_seconds = {s.seconds: s for s in stages}
    cutoffs = [
        x for s in sorted(stages, reverse=True) for x in (ms_since_epoch(s.cutoff(now)), s.seconds)
    ]
    mode = "peek" if dry_run else "claim"
    client = store.client
    wire = _Wire(client)
    per_key = is_cluster(client)
    sha = ""
    left = limit

    def call(keys: Sequence[Any], most: int) -> list[tuple[bytes, int, bytes]]:
        nonlocal sha
        from redis.exceptions import NoScriptError

        args = [mode, most, *cutoffs]
        if per_key:  # EVAL per key: a cluster pipeline refuses EVALSHA
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.execute_command("EVAL", CLAIM_SCRIPT, 1, key, *args)
                return [r for answer in pipe.execute() for r in records(wire.raw(answer))]
        if not sha:
            sha = client.script_load(CLAIM_SCRIPT)
        try:
            answer = client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            sha = client.script_load(CLAIM_SCRIPT)
            answer = client.evalsha(sha, len(keys), *keys, *args)
        return list(records(wire.raw(answer)))

    def batches() -> Iterator[list[Any]]:
        batch: list[Any] = []
        pattern = glob_escape(store.prefix) + "*"
        for key in client.scan_iter(match=pattern, count=batch_size, _type="hash"):
            batch.append(key)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    with store._guard():
        # SCAN reads ahead in a thread; a cluster client's nodes are walked in this one.
        for keys in batches() if per_key else read_ahead(batches()):
            if on_batch is not None:
                on_batch([key_of(store, k) for k in keys])
            most = batch_size if left is None else left
            answer: list[tuple[bytes, int, bytes]] = []
            if per_key and left is not None:  # each EVAL claims at most one: `room` keys
                i = 0
                while i < len(keys) and len(answer) < most:
                    room = most - len(answer)
                    answer += call(keys[i : i + room], room)
                    i += room
            else:
                answer = call(keys, most)
            found = []
            for raw_key, seconds, packed in answer:
                key = key_of(store, wire.text(raw_key))
                stage = by_seconds[seconds]
                state = decode(wire.text(packed))
                found.append(AbandonedCart(key, state, stage, report_id(key, state, stage)))
            if left is not None:
                left -= len(found)
            if found:
                yield found
            if left is not None and left <= 0:
                return
