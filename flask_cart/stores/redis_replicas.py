"""Acknowledging a Redis change only once n replicas have it (``CART_REDIS_REPLICAS``).

Redis replicates asynchronously: a primary that dies before its replica received a change
takes the change with it, and the promoted replica never saw it. `ReplicaAck` runs the
change's command and ``WAIT n timeout`` on one connection (a non-transactional pipeline,
one round trip): ``WAIT`` counts the replicas that received that connection's writes, so
on any other connection it would answer at once. On Redis Cluster both go to the node
that holds the key's slot; a ``MOVED`` (the script did not run) refreshes the slot map and
tries again, an ``ASK`` sends the pair to the importing node after ``ASKING``.

Fewer replicas than asked within what is left of the store's timeout raise
StoreUnavailable: the change may have been applied, and a retry with the same
Idempotency-Key is safe. A checkout's take is the exception: the cart is already gone from
the primary, and a 503 would lose the order (a retry finds no cart), so its snapshot is
handed over unconfirmed, with a WARNING; after a failover that lost the take, the cart
may reappear. An answer that wrote nothing yet acknowledges an earlier change
(a retry answered "repeat", a merge already applied) first writes a no-op (a key's TTL set
to what it is), so the ``WAIT`` covers every write before it, that earlier change's too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from .failures import redis_cannot_answer, unavailable

log = logging.getLogger("flask_cart")

#: Statuses of a change script's answer that acknowledge a change without writing one.
QUIET_STATUSES = frozenset({b"repeat", b"merged", "repeat", "merged"})

#: KEYS: the keys of one slot the change used. Sets the TTL of the first one that has a
#: TTL to what it is: a write replicated after every earlier one, changing nothing.
TOUCH_SCRIPT = """
for _, k in ipairs(KEYS) do
  local left = redis.call('PTTL', k)
  if left > 0 then
    redis.call('PEXPIRE', k, left)
    return 1
  end
end
return 0
"""

#: The most replicas CART_REDIS_REPLICAS may name.
MAX_REPLICAS = 100

#: Tries of one change against a cluster whose slots moved under it (MOVED, ASK).
REDIRECTS = 3


def check_replicas(value: object) -> int:
    """CART_REDIS_REPLICAS: a whole number of replicas from 0 (no WAIT) to MAX_REPLICAS."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPLICAS:
        raise ValueError(
            f"CART_REDIS_REPLICAS must be a whole number from 0 to {MAX_REPLICAS}, got {value!r}"
        )
    return value


class ReplicaAck:
    """Runs a change and ``WAIT`` for `replicas` replicas on the connection of the key's
    node; `timeout` (seconds) bounds both unless a call passes its own deadline."""

    def __init__(self, client: Any, replicas: int, timeout: float) -> None:
        self.client = client
        self.replicas = replicas
        self.timeout = timeout
        self._cluster = hasattr(client, "nodes_manager")
        self._stale = False

    def script(
        self,
        script: Any,
        keys: Sequence[Any],
        args: Sequence[Any],
        *,
        deadline: float | None = None,
        required: bool = True,
    ) -> Any:
        """Run a registered script (redis-py's Script: ``sha``, ``script``) on `keys` and
        answer its reply once the replicas have it (`required` False: answer it anyway
        once the wait is over, a shortfall logged as a WARNING)."""
        end = time.monotonic() + self.timeout if deadline is None else deadline
        call = ("EVALSHA", script.sha, len(keys), *keys, *args)
        answer = self._acknowledged(keys, call, end, source=script.script, required=required)
        status = answer[0] if isinstance(answer, list) and answer else None
        if status in QUIET_STATUSES:
            self.confirm(keys, deadline=end)
        return answer

    def command(self, keys: Sequence[Any], *call: Any, deadline: float | None = None) -> Any:
        """Run one command (``DEL``, ``EXPIRE``, ``EVAL`` ...) whose keys are `keys` and
        answer its reply once the replicas have it."""
        return self._acknowledged(keys, call, deadline)

    def confirm(self, keys: Sequence[Any], *, deadline: float | None = None) -> None:
        """Wait until the replicas have every change made so far to `keys`' slot: an
        answer read from Redis, not written, acknowledges a change made earlier."""
        self._acknowledged(keys, ("EVAL", TOUCH_SCRIPT, len(keys), *keys), deadline)

    def _acknowledged(
        self,
        keys: Sequence[Any],
        call: tuple[Any, ...],
        deadline: float | None,
        source: str | None = None,
        required: bool = True,
    ) -> Any:
        import redis.exceptions as rex

        end = time.monotonic() + self.timeout if deadline is None else deadline
        asking: tuple[str, int] | None = None
        loaded = False
        for _ in range(REDIRECTS + 1):
            node = self._node(keys[0], asking)
            answer, acks = self._pair(node, call, end, asking is not None)
            if isinstance(answer, rex.NoScriptError) and source is not None and not loaded:
                node.script_load(source)  # the script did not run: load it there, once
                loaded = True
                continue
            if isinstance(answer, rex.MovedError):  # did not run: the slot is elsewhere now
                self._stale = True
                asking = None
                continue
            if isinstance(answer, rex.AskError):  # did not run: the slot is being migrated
                asking = (answer.host, answer.port)
                continue
            if isinstance(answer, Exception):
                raise answer
            self._check(acks, required)
            return answer
        raise unavailable(f"the cart's slot kept moving ({REDIRECTS + 1} redirections)")

    def _node(self, key: Any, asking: tuple[str, int] | None) -> Any:
        """The client of the node that holds `key` (or that `asking` names)."""
        if not self._cluster:
            return self.client
        manager = self.client.nodes_manager
        if self._stale:
            manager.initialize()
            self._stale = False
        if asking is not None:
            node = self.client.get_node(host=asking[0], port=asking[1])
            if node is None:
                self._stale = True
                raise unavailable(f"no such node {asking[0]}:{asking[1]} (ASK)")
        else:
            node = self.client.get_node_from_key(key)
        get = getattr(self.client, "get_redis_connection", None)
        return get(node) if get is not None else node.redis_connection

    def _pair(self, node: Any, call: tuple[Any, ...], end: float, asking: bool) -> tuple[Any, Any]:
        """The change and WAIT in one pipeline on one connection: their two replies
        (error replies as exception objects)."""
        # A tenth of what is left is kept for the replies to arrive within the socket
        # timeout (a socket timeout would drop the connection).
        wait_ms = max(1, int((end - time.monotonic()) * 900))
        try:
            with node.pipeline(transaction=False) as pipe:
                if asking:
                    pipe.execute_command("ASKING")
                pipe.execute_command(*call)
                pipe.execute_command("WAIT", self.replicas, wait_ms)
                replies = pipe.execute(raise_on_error=False)
        except Exception as exc:
            if self._cluster and redis_cannot_answer(exc):
                self._stale = True  # the node may be gone: read the slot map again next time
            raise
        return replies[-2], replies[-1]

    def _check(self, acks: Any, required: bool = True) -> None:
        """StoreUnavailable unless WAIT answered at least `replicas` replicas (`required`
        False: a WARNING instead)."""
        if isinstance(acks, Exception):
            detail = f"WAIT for the replicas failed ({type(acks).__name__}: {acks})"
        elif int(acks) < self.replicas:
            detail = f"{acks} of {self.replicas} replicas acknowledged the change in time"
        else:
            return
        if required:
            raise unavailable(detail)
        log.warning(
            "flask-cart: a checkout took the cart unconfirmed: %s; after a failover the cart "
            "may reappear",
            detail,
        )


__all__ = [
    "MAX_REPLICAS",
    "QUIET_STATUSES",
    "REDIRECTS",
    "TOUCH_SCRIPT",
    "ReplicaAck",
    "check_replicas",
]
