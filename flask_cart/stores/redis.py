"""Redis store: one hash per cart, one Lua script per change, TTL renewed on every write.

Layout of the hash ``<prefix>{<identifier>}:<instance>`` (the braces are a Redis Cluster
hash tag, so both instances of one owner share a slot):

- ``l:<product_id>``: ``"<quantity>|<seq>|<unit_cost>|<extra as JSON>"``
- ``_v`` version, ``_c``/``_u`` created/updated (ms since epoch), ``_k`` customer id
  (empty for a guest), ``_n`` line sequence, ``_s`` sealed, ``_i`` the cart's uid,
  ``m:<marker>`` merges applied (when, in ms; the MAX_MERGE_MARKERS most recent, and every
  signed link's ``m:link:...``); a tombstone (a guest cart merged at a login) also holds
  ``m:into:<identifier>:<instance>``.

Beside it, in the same slot, the hash ``<cart key>:ops`` records the changes sent with an
id (an Idempotency-Key): ``<op id> -> "<expiry in ms>|<fingerprint>"``, each for
KEY_SECONDS, the hash's TTL kept at least that of its newest record.

Every call is one round trip (a merge: one read, then one compare-and-set script per
try), so a frozen server costs one socket timeout. The scripts are in redis_scripts.py.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import CartClosed, IdempotencyKeyReused, LineNotFound, StoreUnavailable
from ..lines import (
    CartState,
    Limits,
    Line,
    MergeOutcome,
    Owner,
    apply_add,
    apply_merge,
    make_line,
)
from .base import (
    MAX_MERGE_MARKERS,
    TOMBSTONE_SECONDS,
    AbandonedCart,
    BatchHook,
    CartKey,
    CartStats,
    CartStore,
    CleanupResult,
    Contact,
    Progress,
    Stage,
    fingerprint,
    link_markers,
    new_op_id,
    tombstone_marker,
)
from .failures import redis_cannot_answer, unavailable
from .redis_replicas import ReplicaAck, check_replicas
from .redis_scripts import SCRIPTS

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("flask_cart")

DEFAULT_TIMEOUT = 2.0
#: A merge whose target keeps changing under it gives up after this many tries (or the
#: store's timeout, whichever comes first).
MERGE_ATTEMPTS = 100  # the timeout bounds them first under contention


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def datetime_from_ms(value: str | None) -> datetime | None:
    """A hash field of milliseconds since the Unix epoch as a UTC datetime (None when unset)."""
    return datetime.fromtimestamp(int(value) / 1000, timezone.utc) if value else None


def _fields(raw: Any) -> dict[str, str]:
    """A cart hash's fields: from HGETALL (a dict) or a script's packed answer (NUL-joined)."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, str):
        parts = raw.split("\0") if raw else []
        return dict(zip(parts[::2], parts[1::2], strict=True))
    return {_text(k): _text(v) for k, v in raw.items()}


_SCALARS = (str, int, float, bool, type(None))


@lru_cache(maxsize=512)
def _flat_extra(text: str) -> dict[str, Any] | None:
    """A line's extra details parsed from their JSON text, when every value is a scalar
    (so a shallow copy is a full one); None otherwise. Most lines repeat a few texts."""
    value = json.loads(text)
    return value if all(type(v) in _SCALARS for v in value.values()) else None


def _extra(text: str) -> dict[str, Any]:
    """A line's extra details from their JSON text: a new dict every time."""
    if text == "{}":
        return {}
    flat = _flat_extra(text)
    return dict(flat) if flat is not None else dict(json.loads(text))


def run_script(script: Any, keys: list[str], args: list[Any]) -> Any:
    """``script(keys=keys, args=args)`` (a script of ``client.register_script``) without the
    checks for pipelines that redis-py's Script makes on every call: EVALSHA, and on
    NOSCRIPT (a server that restarted or flushed its scripts) SCRIPT LOAD and EVALSHA again."""
    client = script.registered_client
    try:
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    except Exception as exc:
        from redis.exceptions import NoScriptError  # redis-py is optional: imported here

        if not isinstance(exc, NoScriptError):
            raise
        script.sha = client.script_load(script.script)
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


def decode_hash(raw: Any) -> CartState:
    """A cart hash (HGETALL's dict or a script's packed answer) to a CartState."""
    fields = _fields(raw)
    if not fields:
        return CartState()
    ordered: list[tuple[int, Line]] = []
    merged = set()
    for name, value in fields.items():
        if name.startswith("l:"):
            quantity, seq, unit_cost, extra = value.split("|", 3)
            line = make_line(name[2:], int(quantity), unit_cost, _extra(extra))
            ordered.append((int(seq), line))
        elif name.startswith("m:"):
            merged.add(name[2:])
    ordered.sort(key=lambda pair: pair[0])
    return CartState(
        lines={line.product_id: line for _, line in ordered},
        version=int(fields.get("_v", 0)),
        created_at=datetime_from_ms(fields.get("_c")),
        updated_at=datetime_from_ms(fields.get("_u")),
        customer_id=fields.get("_k") or None,
        sealed=fields.get("_s") == "1",
        merged=frozenset(merged),
        uid=fields.get("_i", ""),
    )


def encode_line(line: Line, seq: int) -> str:
    return f"{line.quantity}|{seq}|{line.unit_cost}|{_extra_json(line)}"


def _merge_args(
    fields: Mapping[str, str],
    source: Mapping[str, Line],
    lines: Mapping[str, Line],
    marker: str,
    owner: Owner,
    max_lines: int,
    carried: tuple[list[str], list[str]] = ([], []),
) -> list[Any]:
    """ARGV of the merge script: write `lines` (the rule's result) over the cart read as
    `fields`, if what the rule looked at is unchanged and the new lines still fit under
    `max_lines` (see redis_scripts.MERGE); `carried`: markers, and flat (op id, record)
    pairs, to record with it."""
    # The source's lines, and any line the rule dropped (a "replace" drops the cart's others).
    checks = [f"l:{pid}" for pid in source]
    checks += [
        f for f in fields if f.startswith("l:") and f[2:] not in lines and f[2:] not in source
    ]
    deletes, sets, new = [], [], []
    for field in checks:
        line = lines.get(field[2:])
        if line is None:
            if field in fields:
                deletes.append(field)
        elif field in fields:
            value = encode_line(line, int(fields[field].split("|", 2)[1]))
            if value != fields[field]:
                sets += [field, value]
        else:
            new += [field, f"{line.quantity}|", f"|{line.unit_cost}|{_extra_json(line)}"]
    return [
        f"m:{marker}",
        int(time.time() * 1000),
        owner.ttl,
        owner.customer_id or "",
        MAX_MERGE_MARKERS,
        new_op_id(),
        max_lines - len(new) // 3 + len(deletes) if new else "",
        len(checks),
        *(item for field in checks for item in (field, fields.get(field, ""))),
        len(deletes),
        *deletes,
        len(sets) // 2,
        *sets,
        len(new) // 3,
        *new,
        len(carried[0]),
        *carried[0],
        len(carried[1]) // 2,
        *carried[1],
    ]


def _extra_json(line: Line) -> str:
    return json.dumps(dict(line.extra), separators=(",", ":"))


def client_wait(client: Any) -> float | None:
    """The longest one command on `client` may wait for a frozen server: its socket timeout
    once per attempt (inf without a socket timeout; None when its settings are unknown)."""
    get_kwargs = getattr(client, "get_connection_kwargs", None)
    if get_kwargs is None:
        return None
    kwargs = get_kwargs()
    timeout = kwargs.get("socket_timeout")
    if timeout is None:
        return math.inf
    try:  # redis-py 5.0's RedisCluster has get_retry() but no retry to give
        retry = client.get_retry()
    except AttributeError:
        retry = getattr(client, "retry", kwargs.get("retry"))
    retries = retry.get_retries() if hasattr(retry, "get_retries") else 0
    return float(timeout) * (max(retries, 0) + 1)


class RedisStore(CartStore):
    """Carts in Redis (or Redis Cluster) hashes, changed by Lua scripts.

    `timeout` bounds the calls of a client the store makes itself (`from_url`). A client
    passed in is used as is: its own socket timeouts and retries bound a stalled server,
    so give it ``socket_timeout``, ``socket_connect_timeout`` and ``retry=Retry(NoBackoff(),
    0)`` (redis-py 8's defaults, 5 s and 10 retries, wait about a minute).
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "flask_cart:",
        timeout: float = DEFAULT_TIMEOUT,
        replicas: int = 0,
    ) -> None:
        self.client = client
        #: Replicas a change waits for before it is acknowledged (CART_REDIS_REPLICAS).
        self.replicas = replicas
        self._ack = ReplicaAck(client, replicas, timeout) if replicas else None
        #: Seconds that bound every call of this store.
        self.timeout = timeout
        self.prefix = prefix
        self._owns_client = False
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str = "flask_cart:",
        replicas: int = 0,
    ) -> RedisStore:
        """A store on a new client with bounded timeouts and no blind retries."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        store = cls(client, prefix=prefix, timeout=timeout, replicas=replicas)
        store._owns_client = True
        return store

    @classmethod
    def from_config(cls, app: Flask, *, db: Any = None, timeout: float) -> RedisStore:
        """On the CART_REDIS client, else on CART_REDIS_URL with CART_STORE_TIMEOUT; keys
        under CART_KEY_PREFIX. A CART_REDIS client that may wait far longer than the
        timeout for a stalled server is logged as a warning."""
        config = app.config
        prefix = config["CART_KEY_PREFIX"]
        replicas = check_replicas(config.get("CART_REDIS_REPLICAS", 0))
        if config["CART_REDIS"] is None:
            return cls.from_url(
                config["CART_REDIS_URL"], timeout=timeout, prefix=prefix, replicas=replicas
            )
        store = cls(config["CART_REDIS"], prefix=prefix, timeout=timeout, replicas=replicas)
        wait = client_wait(store.client)
        if wait is not None and wait > timeout + 1:
            log.warning(
                "flask-cart: the CART_REDIS client may wait %.0f s for a stalled Redis "
                "(socket timeout x attempts), more than CART_STORE_TIMEOUT (%g s): give it "
                "socket_timeout, socket_connect_timeout and retry=Retry(NoBackoff(), 0), "
                "or use CART_REDIS_URL",
                wait,
                timeout,
            )
        return store

    def key(self, key: CartKey) -> str:
        return f"{self.prefix}{{{quote(key.identifier, safe='')}}}:{quote(key.instance, safe='')}"

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Errors that mean "cannot answer now" (down, a timeout, a failover, a replica,
        loading) as StoreUnavailable, their detail logged; others pass through."""
        try:
            yield
        except Exception as exc:
            if isinstance(exc, StoreUnavailable) or not redis_cannot_answer(exc):
                raise
            raise unavailable("Redis did not answer", exc) from exc

    def ops_key(self, key: CartKey) -> str:
        """The hash of the cart's change-id records (same slot as the cart)."""
        return self.key(key) + ":ops"

    def _run(
        self, name: str, key: CartKey, args: list[Any], *, required: bool = True
    ) -> tuple[str, CartState, str]:
        cart_key = self.key(key)
        keys = [cart_key]
        if name in ("add", "set", "remove", "clear"):
            keys.append(cart_key + ":ops")  # ops_key, quoted once
        with self._guard():
            status, raw, extra = self._call(name, keys, args, required=required)
        return _text(status), decode_hash(raw), _text(extra)

    def _call(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        deadline: float | None = None,
        *,
        required: bool = True,
    ) -> Any:
        """Run the script `name`; with `replicas`, answered once that many replicas have
        the change (`required` False: answered anyway; stores/redis_replicas.py)."""
        if self._ack is None:
            return run_script(self._scripts[name], keys, args)
        return self._ack.script(
            self._scripts[name], keys, args, deadline=deadline, required=required
        )

    def _write(
        self, name: str, key: CartKey, owner: Owner, args: list[Any], op: str | None
    ) -> tuple[str, CartState, str]:
        head = [
            op or f"~{new_op_id()}",
            int(time.time() * 1000),
            owner.ttl,
            owner.customer_id or "",
            fingerprint(name, *args[:2]) if op else "",
        ]
        status, state, extra = self._run(name, key, head + args)
        if status == "sealed":
            raise CartClosed("this cart was merged into another and takes no more changes")
        if status == "reused":
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for another change of this cart"
            )
        if status == "repeat":  # applied before: answered as it is now
            return "ok", replace(state, replayed=True), extra
        return status, state, extra

    def op_record(self, key: CartKey, op: str) -> str | None:
        with self._guard():
            raw = self.client.hget(self.ops_key(key), op)
        if raw is None:
            return None
        expires, _, recorded = _text(raw).partition("|")
        return recorded if int(expires) > time.time() * 1000 else None

    def load(self, key: CartKey) -> CartState:
        with self._guard():
            return decode_hash(self.client.hgetall(self.key(key)))

    def add(
        self, key: CartKey, line: Line, *, owner: Owner, limits: Limits, op: str | None = None
    ) -> CartState:
        args = [
            line.product_id,
            line.quantity,
            line.unit_cost,
            _extra_json(line),
            limits.max_line_quantity,
            limits.max_lines,
        ]
        status, state, extra = self._write("add", key, owner, args, op)
        if status != "ok":
            # Re-raise with the same message the pure rule gives.
            in_cart = int(extra or 0)
            lines = dict(state.lines)
            if status == "quantity_limit" and in_cart:
                lines[line.product_id] = Line(line.product_id, in_cart, line.unit_cost)
            apply_add(lines, line, limits)
        return state

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
        status, state, _ = self._write("set", key, owner, [product_id, quantity], op)
        if status == "missing":
            raise LineNotFound(f"product {product_id!r} is not in the cart", product_id=product_id)
        return state

    def remove(
        self, key: CartKey, product_id: str, *, owner: Owner, op: str | None = None
    ) -> tuple[bool, CartState]:
        status, state, _ = self._write("remove", key, owner, [product_id], op)
        return status == "ok", state

    def clear(self, key: CartKey, *, owner: Owner, op: str | None = None) -> CartState:
        return self._write("clear", key, owner, [], op)[1]

    def delete(self, key: CartKey) -> bool:
        with self._guard():
            if self._ack is not None:
                return bool(self._ack.command([self.key(key)], "DEL", self.key(key)))
            return bool(self.client.delete(self.key(key)))

    def take(
        self, key: CartKey, *, expect: CartState | None = None, session: Any = None
    ) -> CartState:
        """Read and delete the cart; a sealed one (a merge in progress) raises CartClosed and
        stays, so its lines reach the merge's target and never an order as well. With
        `replicas`, a take the replicas did not confirm in time still answers what it took
        (a WARNING is logged): the cart is gone from the primary, and a 503 would lose the
        order; after a failover that lost the take, the cart reappears."""
        if session is not None:
            raise TypeError("take(session=...) needs a SQL store; this is the Redis store")
        args = ["", ""] if expect is None else [expect.version, expect.uid]
        status, state, _ = self._run("take", key, args, required=False)
        if status == "sealed":
            raise CartClosed("this cart is being merged into another and cannot be checked out")
        return state

    def seal(self, key: CartKey) -> CartState:
        return self._run("seal", key, [int(time.time() * 1000)])[1]

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
        """Read the target, apply the shared merge rule (lines.apply_merge), and write the
        result with one compare-and-set script: only if the lines the rule looked at are
        still as read, with the marker (and what `carry` hands on) in the same write.

        A target changed there answers its new content and the merge is recomputed from it,
        a bounded number of times within the store's timeout. No WATCH: a frozen server
        costs one timeout, not one per connection reset.
        """
        name = self.key(key)
        deadline = time.monotonic() + self.timeout
        with self._guard():
            carried = self._carried(carry)
            raw = self.client.hgetall(name)
            for _ in range(MERGE_ATTEMPTS):
                state = decode_hash(raw)
                if state.sealed:
                    raise CartClosed("this cart was merged into another")
                if marker in state.merged:
                    if self._ack is not None:  # applied by an earlier call: replicated?
                        self._ack.confirm([name], deadline=deadline)
                    return MergeOutcome(state, already_merged=True)
                lines, moved, dropped = apply_merge(
                    state.lines, source, strategy, limits, line_caps
                )
                args = _merge_args(
                    _fields(raw), source, lines, marker, owner, limits.max_lines, carried
                )
                status, raw, _ = self._call("merge", [name, self.ops_key(key)], args, deadline)
                status = _text(status)
                if status == "ok":
                    return MergeOutcome(decode_hash(raw), moved, dropped)
                if status == "merged":
                    return MergeOutcome(decode_hash(raw), already_merged=True)
                if status == "sealed":
                    raise CartClosed("this cart was merged into another")
                if time.monotonic() > deadline:
                    break
        raise unavailable(f"the cart {name} changed too often to merge within {self.timeout:g} s")

    def _carried(self, source: CartKey | None) -> tuple[list[str], list[str]]:
        """What a merge from `source` hands on: its signed-link markers, and its change-id
        records as flat (op id, record) pairs."""
        if source is None:
            return [], []
        markers = link_markers(decode_hash(self.client.hgetall(self.key(source))))
        records = _fields(self.client.hgetall(self.ops_key(source)))
        records.pop("_c", None)
        return markers, [item for pair in sorted(records.items()) for item in pair]

    def bury(self, key: CartKey, into: CartKey) -> None:
        marker = "m:" + tombstone_marker(into)
        self._run("bury", key, [marker, int(time.time() * 1000), TOMBSTONE_SECONDS])

    def get_ttl(self, key: CartKey) -> int:
        with self._guard():
            seconds = int(self.client.ttl(self.key(key)))
        return max(seconds, 0)

    def set_ttl(self, key: CartKey, seconds: int) -> bool:
        with self._guard():
            if self._ack is not None:
                return bool(self._ack.command([self.key(key)], "EXPIRE", self.key(key), seconds))
            return bool(self.client.expire(self.key(key), seconds))

    def cart_stats(
        self,
        *,
        now: datetime,
        guest_cutoff: datetime,
        customer_cutoff: datetime,
        sealed_cutoff: datetime | None = None,
    ) -> CartStats:
        """See CartStore.cart_stats; the work is in stores/redis_cleanup.py."""
        from . import redis_cleanup

        return redis_cleanup.cart_stats(
            self,
            now=now,
            guest_cutoff=guest_cutoff,
            customer_cutoff=customer_cutoff,
            sealed_cutoff=sealed_cutoff,
        )

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
        """See CartStore.delete_expired; the work is in stores/redis_cleanup.py."""
        from . import redis_cleanup

        return redis_cleanup.delete_expired(
            self,
            guest_cutoff=guest_cutoff,
            customer_cutoff=customer_cutoff,
            batch_size=batch_size,
            dry_run=dry_run,
            progress=progress,
            sealed_cutoff=sealed_cutoff,
            on_batch=on_batch,
        )

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
        """See CartStore.claim_abandoned; the work is in stores/redis_abandoned.py."""
        from . import redis_abandoned

        return redis_abandoned.claim_abandoned(
            self,
            decode=decode_hash,
            stages=stages,
            now=now,
            limit=limit,
            batch_size=batch_size,
            dry_run=dry_run,
            on_batch=on_batch,
        )

    def load_many(self, keys: Sequence[CartKey]) -> list[CartState]:
        """See CartStore.load_many; one pipeline (stores/redis_abandoned.py)."""
        from . import redis_abandoned

        return redis_abandoned.load_many(self, keys, decode_hash)

    def release_abandoned(self, reports: Sequence[AbandonedCart]) -> None:
        """See CartStore.release_abandoned (stores/redis_abandoned.py)."""
        from . import redis_abandoned

        redis_abandoned.release(self, reports)

    def set_email(self, key: CartKey, email: str | None) -> bool:
        """See CartStore.set_email; the field ``_e`` of the cart's hash."""
        from . import redis_abandoned

        return redis_abandoned.set_contact(self, key, "_e", email or "", "")

    def unsubscribe(self, key: CartKey, uid: str) -> bool:
        """See CartStore.unsubscribe; the field ``_x`` of the cart's hash."""
        from . import redis_abandoned

        return redis_abandoned.set_contact(self, key, "_x", "1", uid)

    def reread_abandoned(self, keys: Sequence[CartKey]) -> list[tuple[CartState, Contact]]:
        """See CartStore.reread_abandoned: one round trip."""
        from . import redis_abandoned

        return redis_abandoned.reread(self, keys, decode_hash)

    def contacts(self, keys: Sequence[CartKey], uids: Sequence[str]) -> list[Contact]:
        """See CartStore.contacts (stores/redis_abandoned.py)."""
        from . import redis_abandoned

        return redis_abandoned.contacts(self, keys, uids)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
