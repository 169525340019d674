"""Cluster mode's session store on a real redis-server, beyond the conformance suite every
store passes: the fence, expiry as a TTL, taking and adopting sessions, and WAIT."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlite.broker.cluster.config import parse_redis_url
from mqlite.broker.cluster.store import RedisStore, SessionsFenced, session_keys
from mqlite.broker.engine.journal import Journal
from mqlite.broker.engine.session import Delivery, Session
from mqlite.broker.engine.session import SubscriptionOptions as Options
from mqlite.broker.engine.store import StoreWriteError
from mqlite.broker.message import Message

from ..redis_server import RedisServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    redis = RedisServer(tmp_path)
    yield redis
    redis.kill()


def _store(server: RedisServer, node: str, epoch: int, **settings: float) -> RedisStore:
    store = RedisStore(parse_redis_url(server.url), node, epoch=epoch, **settings)  # type: ignore[arg-type]
    store.load()
    return store


def _saved(store: RedisStore, session: Session, *, topic_filter: str | None = None,
           queued: int = 0) -> None:
    journal = Journal()
    journal.session(session, promise=True)
    if topic_filter is not None:
        journal.subscription(session, topic_filter, Options(qos=1))
    for seq in range(1, queued + 1):
        message = Message(topic="t", payload=str(seq).encode(), qos=1, retain=False)
        journal.delivery(session, Delivery(seq, message, 1, False), promise=True)
    store.apply(journal.take())


def test_a_write_by_a_node_that_no_longer_owns_the_session_is_refused_whole(
        server: RedisServer) -> None:
    first = _store(server, "a", 1)
    session = Session("fenced", 5, 600)
    _saved(first, session, topic_filter="x")
    taker = _store(server, "b", 2)
    assert taker.take("fenced") is not None  # a client resumed it on node b
    journal = Journal()
    journal.subscription(session, "sneaked/in", Options())
    journal.delivery(session, Delivery(1, Message(topic="x", payload=b"p", qos=1,
                                                  retain=False), 1, False), promise=True)
    with pytest.raises(SessionsFenced) as refused:
        first.apply(journal.take())
    assert refused.value.client_ids == ["fenced"]
    base, subs, deliveries, _ = session_keys("fenced")
    assert server.call("HGET", base, "owner") == b"b|2"
    assert server.call("HKEYS", subs) == [b"x"]  # nothing of the refused call was written
    assert server.call("EXISTS", deliveries) == 0


def test_expiry_is_a_ttl_from_the_disconnection_cleared_when_a_client_resumes(
        server: RedisServer) -> None:
    store = _store(server, "a", 1)
    session = Session("expiring", 5, 600)
    _saved(store, session, topic_filter="x", queued=2)
    base, subs, deliveries, _ = session_keys("expiring")
    assert server.call("PTTL", base) == -1  # connected: no TTL
    session.disconnected_at = time.time()
    _saved(store, session)
    for key in (base, subs, deliveries):
        assert 600_000 < server.call("PTTL", key) <= 605_000
    state = _store(server, "b", 2).take("expiring")
    assert state is not None and sorted(state.deliveries["expiring"]) == [1, 2]
    for key in (base, subs, deliveries):
        assert server.call("PTTL", key) == -1


def test_adoption_takes_only_the_dead_nodes_sessions(server: RedisServer) -> None:
    dead, other = _store(server, "dead", 1), _store(server, "other", 2)
    for client_id in ("left-1", "left-2", "moved"):
        _saved(dead, Session(client_id, 4, 0xFFFFFFFF), topic_filter=f"{client_id}/#")
    _saved(other, Session("not-its", 4, 600))
    assert _store(server, "elsewhere", 3).take("moved") is not None  # resumed elsewhere
    adopter = _store(server, "adopter", 4)
    state, elsewhere = adopter.adopt("dead")
    assert sorted(state.sessions) == ["left-1", "left-2"]
    assert elsewhere == {"moved": ("elsewhere", ["moved/#"])}
    assert server.call("HGET", session_keys("left-1")[0], "owner") == b"adopter|4"
    assert server.call("HGET", session_keys("not-its")[0], "owner") == b"other|2"
    assert server.call("EXISTS", "mq:nsess:{dead}") == 0
    assert sorted(server.call("SMEMBERS", "mq:nsess:{adopter}")) == [b"left-1", b"left-2"]
    # The adopted sessions are the adopter's at its next start.
    assert sorted(_store(server, "adopter", 5).load().sessions) == ["left-1", "left-2"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_wait_replicas_acknowledges_only_what_a_replica_confirmed(tmp_path: Path) -> None:
    port = _free_port()
    # (A replica's first sync starts at once, not after the default 5 s.)
    primary = RedisServer(tmp_path / "primary", port, "--repl-diskless-sync-delay", "0")
    binary = shutil.which("redis-server") or "redis-server"
    replica_dir = tmp_path / "replica"
    replica_dir.mkdir()
    replica = subprocess.Popen(
        [str(binary), "--port", "0", "--unixsocket", str(replica_dir / "redis.sock"),
         "--dir", str(replica_dir), "--save", "", "--replicaof", "127.0.0.1", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while b"state=online" not in primary.call("INFO", "replication"):
            assert time.monotonic() < deadline, "the replica never came in sync"
            time.sleep(0.02)  # polling the primary's state: nothing to wait on
        store = _store(primary, "a", 1, wait_replicas=1, wait_timeout=0.5)
        while True:  # "online" comes a moment before the replica acknowledges writes
            try:
                _saved(store, Session("replicated", 5, 600), topic_filter="x")
                break  # confirmed: no error
            except StoreWriteError:
                assert time.monotonic() < deadline, "the replica never confirmed a write"
        replica.kill()
        replica.wait(10)
        with pytest.raises(StoreWriteError, match="only 0 of 1 Redis replica"):
            _saved(store, Session("unconfirmed", 5, 600))
    finally:
        replica.kill()
        replica.wait(10)
        primary.kill()


def test_a_refused_hand_over_is_a_store_error_the_caller_handles(server: RedisServer) -> None:
    """Its caller (a CONNECT waiting for its session) refuses the CONNECT on StoreWriteError;
    any other exception would leave it waiting."""
    store = _store(server, "a", 1)
    _saved(store, Session("refused", 5, 600))
    taker = _store(server, "b", 2)  # connected: it loaded its scripts
    server.call("SCRIPT", "FLUSH")  # and they are gone: NOSCRIPT
    with pytest.raises(StoreWriteError, match="refused to hand over session refused"):
        taker.take("refused")
