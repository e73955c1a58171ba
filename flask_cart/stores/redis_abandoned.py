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
from .base import AbandonedCart, BatchHook, CartKey, Contact, Stage, report_id
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


#: KEYS: one cart. ARGV: the stage's seconds, the version it was claimed at. Deletes the
#: claim only while it still names that version (a later claim stays).
RELEASE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'a:' .. ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'a:' .. ARGV[1])
end
return 0
"""


def load_many(
    store: RedisStore, keys: Sequence[CartKey], decode: Callable[[Any], CartState]
) -> list[CartState]:
    """The carts at `keys` as they are now, in order: one pipeline of HGETALLs."""
    if not keys:
        return []
    with store._guard(), store.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(store.key(key))
        return [decode(raw) for raw in pipe.execute()]


#: KEYS: carts. Answers one string: per cart ``<packed length>:<packed cart>`` (the hash's
#: fields and values joined by NUL, as CLAIM_SCRIPT packs them; empty for no cart): one
#: bulk reply is far cheaper to read than a pipeline of HGETALL replies.
READ_SCRIPT = """
local out = {}
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  local parts = {}
  for j = 1, #flat, 2 do
    if flat[j] ~= '_o' then
      parts[#parts + 1] = flat[j]
      parts[#parts + 1] = flat[j + 1]
    end
  end
  local packed = table.concat(parts, '\\0')
  out[#out + 1] = #packed .. ':' .. packed
end
return table.concat(out)
"""


def _packed(answer: bytes) -> Iterator[bytes]:
    """Each cart's packed hash in READ_SCRIPT's answer."""
    pos, end = 0, len(answer)
    while pos < end:
        colon = answer.index(b":", pos)
        stop = colon + 1 + int(answer[pos:colon])
        yield answer[colon + 1 : stop]
        pos = stop


def reread(
    store: RedisStore, keys: Sequence[CartKey], decode: Callable[[Any], CartState]
) -> list[tuple[CartState, Contact]]:
    """See CartStore.reread_abandoned: one script call (one per cart in a pipeline on Redis
    Cluster) answering the carts' hashes packed; the contact is read from the same hash
    (its fields ``_e`` and ``_x``)."""
    if not keys:
        return []
    client = store.client
    wire = _Wire(client)
    names = [store.key(key) for key in keys]
    with store._guard():
        if is_cluster(client):
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.execute_command("EVAL", READ_SCRIPT, 1, name)
                answers = [p for a in pipe.execute() for p in _packed(wire.raw(a))]
        else:
            answers = list(_packed(wire.raw(client.eval(READ_SCRIPT, len(names), *names))))
    out = []
    for packed in answers:
        text = packed.decode(wire.encoding, wire.errors)
        parts = text.split("\0") if text else []
        fields = dict(zip(parts[::2], parts[1::2], strict=True))
        contact = Contact(fields.get("_e") or None, fields.get("_x") == "1")
        out.append((decode(fields), contact))
    return out


def release(store: RedisStore, reports: Sequence[AbandonedCart]) -> None:
    """Delete the claims of `reports` (their reminders were not sent): one pipeline."""
    if not reports:
        return
    with store._guard(), store.client.pipeline(transaction=False) as pipe:
        for r in reports:
            key = store.key(r.key)  # EVAL, not eval(): a cluster pipeline has no eval()
            pipe.execute_command("EVAL", RELEASE_SCRIPT, 1, key, r.stage.seconds, r.state.version)
        pipe.execute()


# --- contacts: fields of the cart's hash, kept by every change, gone with the cart ------------

#: KEYS: the cart. ARGV: the field (``_e`` address, ``_x`` unsubscribed), its value ("" to
#: delete it), the uid the cart must have ("" for any). Answers 1 when written, 0 when
#: there is no such cart (none, a tombstone, another uid).
CONTACT_SCRIPT = """
local f = redis.call('HMGET', KEYS[1], '_v', '_s', '_i')
if not f[1] or f[2] == '1' or (ARGV[3] ~= '' and f[3] ~= ARGV[3]) then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


def set_contact(store: RedisStore, key: CartKey, field: str, value: str, uid: str) -> bool:
    """Write one contact field of the cart at `key` (see CONTACT_SCRIPT)."""
    name = store.key(key)
    with store._guard():
        if store._ack is not None:  # CART_REDIS_REPLICAS: answered once replicated
            return bool(
                store._ack.command([name], "EVAL", CONTACT_SCRIPT, 1, name, field, value, uid)
            )
        return bool(store.client.eval(CONTACT_SCRIPT, 1, name, field, value, uid))


def contacts(store: RedisStore, keys: Sequence[CartKey], uids: Sequence[str]) -> list[Contact]:
    """See CartStore.contacts: one pipeline of HMGETs."""
    if not keys:
        return []
    with store._guard(), store.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(store.key(key), "_i", "_e", "_x")
        answers = pipe.execute()
    out = []
    for (uid_now, email, stopped), uid in zip(answers, uids, strict=True):
        text = uid_now.decode() if isinstance(uid_now, bytes) else uid_now
        if text != uid:
            out.append(Contact())
            continue
        address = email.decode() if isinstance(email, bytes) else email
        out.append(Contact(address or None, stopped in (b"1", "1")))
    return out
