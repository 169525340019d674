"""Real redis-server processes on unix sockets in a temp dir (stopped by PID), and broker
nodes as subprocesses joined to them, with test-sized timers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..broker_process import BrokerProcess
from ..redis_server import RedisServer

NODE_TTL = "1.5"  # seconds; the heartbeat is a fifth of it


def start_node(redis: RedisServer, node_id: str, *args: str) -> BrokerProcess:
    """A broker process that has joined the cluster."""
    node = BrokerProcess("--cluster", redis.url, "--node-id", node_id, "--node-ttl", NODE_TTL,
                         *args)
    node.wait_for_log(f"node {node_id} joined")
    return node


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.kill()


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def nodes(shared_redis: RedisServer) -> Iterator[list[BrokerProcess]]:
    """Three nodes of one cluster, shared by a module's tests (each test uses its own
    topics and client ids)."""
    started = [start_node(shared_redis, f"n{i}") for i in (1, 2, 3)]
    for node in started:
        node.discard_log()
    yield started
    for node in started:
        node.proc.kill()
        node.proc.wait()
