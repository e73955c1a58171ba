"""Redis servers of a test's own on private ports: a cluster of primaries and replicas, or
one primary with one replica; started and stopped by the test (see test_redis_replicas.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

#: The slot ranges of a cluster of three primaries.
SLOTS = ((0, 5460), (5461, 10922), (10923, 16383))


def wait_for(check: Any, seconds: float = 20, what: str = "the test servers") -> None:
    """Poll `check` until it is true (Redis errors count as not yet)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except redis.exceptions.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not settle")
        time.sleep(0.1)


def node(port: int) -> redis.Redis:
    """A plain client of the server on `port`."""
    return redis.Redis(port=port, socket_timeout=2, decode_responses=True)


def start(server: str, port: int, workdir: Path, *extra: str) -> subprocess.Popen[bytes]:
    """One redis-server on 127.0.0.1:`port`, no persistence, its files in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(workdir), *extra]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGKILL what still runs (a frozen one too) and reap them all."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait(timeout=10)


def in_sync(port: int) -> bool:
    """The replica on `port` has its link to the primary up."""
    return node(port).info("replication").get("master_link_status") == "up"


def slot_owner(port: int, slot: int) -> int | None:
    """The port of the primary that the node on `port` names for `slot` (None: nobody)."""
    for low, high, primary, *_ in node(port).execute_command("CLUSTER", "SLOTS"):
        if low <= slot <= high:
            return int(primary[1])
    return None


def cluster_nodes(ports: Sequence[int]) -> str:
    """What each node on `ports` says of the cluster (CLUSTER NODES), for a failure message."""
    views = []
    for port in ports:
        try:
            views.append(f"{port}: {node(port).execute_command('CLUSTER', 'NODES')}")
        except redis.exceptions.RedisError as error:
            views.append(f"{port}: {error}")
    return "\n".join(views)


def cluster_node(
    server: str, port: int, workdir: Path, node_timeout_ms: int = 1000
) -> subprocess.Popen[bytes]:
    """One cluster-enabled redis-server; started again on the same `workdir` it rejoins
    the cluster it knew (nodes.conf), as a replica when its slots moved meanwhile."""
    options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    options += ("--cluster-node-timeout", str(node_timeout_ms))
    return start(server, port, workdir, *options)


@contextmanager
def cluster(
    server: str,
    workdir: Path,
    primaries: Sequence[int],
    replicas: Sequence[int],
    node_timeout_ms: int = 1000,
) -> Iterator[dict[int, subprocess.Popen[bytes]]]:
    """Three primaries (SLOTS), each with one replica, formed and in sync: the node
    processes by port."""
    ports = [*primaries, *replicas]
    nodes = {
        port: cluster_node(server, port, workdir / str(port), node_timeout_ms) for port in ports
    }
    try:
        for port in ports:
            wait_for(lambda p=port: node(p).ping())
        first = node(primaries[0])
        for port in ports[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        for port, (low, high) in zip(primaries, SLOTS, strict=True):
            node(port).execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        ids = {port: node(port).execute_command("CLUSTER", "MYID") for port in primaries}
        for primary, follower in zip(primaries, replicas, strict=True):
            client = node(follower)
            wait_for(lambda c=client, i=ids[primary]: i in c.execute_command("CLUSTER", "NODES"))
            client.execute_command("CLUSTER", "REPLICATE", ids[primary])
        for port in ports:
            wait_for(lambda p=port: node(p).cluster("info")["cluster_state"] == "ok")
        for follower in replicas:
            wait_for(lambda p=follower: in_sync(p))
        yield nodes
    finally:
        stop(list(nodes.values()))  # also those a test started again in `nodes`


@contextmanager
def primary_and_replica(
    server: str, workdir: Path, primary: int, replica: int
) -> Iterator[dict[int, subprocess.Popen[bytes]]]:
    """A standalone primary and one replica of it, in sync: the processes by port."""
    nodes = {primary: start(server, primary, workdir / str(primary))}
    try:
        wait_for(lambda: node(primary).ping())
        nodes[replica] = start(
            server, replica, workdir / str(replica), "--replicaof", "127.0.0.1", str(primary)
        )
        wait_for(lambda: in_sync(replica))
        yield nodes
    finally:
        stop(list(nodes.values()))
