"""One conformance suite for every SessionStore, driven through the durability journal: what
the journal records and the store applies comes back from load() after a reopen, exactly;
deletes cascade; state changes replace; a promised change is durable when apply() returns,
and an unpromised queue row may wait."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mqlite.broker import MemoryStore, SessionStore, SQLiteStore, StoreWriteError
from mqlite.broker.cluster.config import parse_redis_url
from mqlite.broker.cluster.store import RedisStore
from mqlite.broker.engine.journal import Journal, StoredDelivery
from mqlite.broker.engine.session import AWAIT_PUBCOMP, AWAIT_PUBREC, Delivery, Session
from mqlite.broker.engine.session import SubscriptionOptions as Options
from mqlite.broker.engine.store import StoredState
from mqlite.broker.message import Message
from mqlite.protocol import Properties, Will

from ..redis_server import RedisServer

Reopen = Callable[[], SessionStore]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reopen]:
    """A function returning the store as a restarted broker would open it."""
    if request.param == "memory":
        memory = MemoryStore()
        yield lambda: memory
        return
    if request.param == "redis":
        yield from _redis_stores(tmp_path)
        return
    path = str(tmp_path / "conformance.db")
    opened: list[SQLiteStore] = []

    def reopen() -> SessionStore:
        if opened:
            opened[-1].close()
        opened.append(SQLiteStore(path))
        opened[-1].load()
        return opened[-1]

    yield reopen
    opened[-1].close()


def _redis_stores(tmp_path: Path) -> Iterator[Reopen]:
    """Cluster mode's store on a real redis-server: each reopen is the node restarted, with
    a new epoch, recovering the sessions its node id owned."""
    server = RedisServer(tmp_path)
    address = parse_redis_url(server.url)
    opened: list[RedisStore] = []

    def reopen() -> SessionStore:
        if opened:
            opened[-1].close()
        opened.append(RedisStore(address, "n1", epoch=len(opened) + 1))
        opened[-1].load()  # as the restarted node does: its sessions, with its new epoch
        return opened[-1]

    try:
        yield reopen
    finally:
        opened[-1].close()
        server.kill()


def _message(topic: str = "t", **fields: object) -> Message:
    values: dict[str, object] = {"payload": b"\x00body", "qos": 1, "retain": False}
    values.update(fields)
    return Message(topic=topic, **values)  # type: ignore[arg-type]


def _session(client_id: str, expiry: int = 300, version: int = 5) -> Session:
    return Session(client_id, version, expiry)


def keeps_retained(store: SessionStore) -> bool:
    """Cluster mode's store leaves retained messages to the cluster (they are in Redis)."""
    return getattr(store, "keeps_retained", True)


def every_delivery(store: SessionStore, state: StoredState, client_id: str
                   ) -> dict[int, StoredDelivery]:
    """What load() gave of a session's deliveries and what it left in the store (read back
    with queued(), and matching the totals load() reported)."""
    found = dict(state.deliveries.get(client_id, {}))
    left = state.queues.get(client_id)
    if left is not None:
        assert store.queues_on_disk
        queued = store.queued(client_id, left.first_seq, 1 << 30)
        assert (len(queued), sum(d.message.size for d in queued)) == (left.count, left.bytes)
        assert (queued[0].seq, queued[-1].seq) == (left.first_seq, left.last_seq)
        found.update((d.seq, d) for d in queued)
    return found


def test_sessions_subscriptions_deliveries_inbound_retained_round_trip(stores: Reopen) -> None:
    store = stores()
    journal = Journal()
    will = Will(topic="w", payload=b"bye", qos=1, retain=True,
                properties=Properties(will_delay_interval=5, user_property=(("a", "b"),)))
    session = _session("c")
    # Recent: a store may expire a session it holds (Redis: a TTL from its disconnection).
    disconnected_at = time.time() - 10.5
    session.will, session.disconnected_at = will, disconnected_at
    journal.session(session, promise=True)
    options = Options(qos=2, no_local=True, retain_as_published=True, retain_handling=1,
                      identifier=7)
    journal.subscription(session, "a/+", options)
    body = _message(properties=Properties(content_type="text/plain",
                                          user_property=(("k", "v"), ("k", "w")),
                                          correlation_data=b"\x01"),
                    expires_at=time.monotonic() + 100)
    first = Delivery(1, body, 1, False, (7,))
    second = Delivery(2, body, 2, True)
    second.packet_id, second.state = 9, AWAIT_PUBREC
    journal.delivery(session, first, promise=True)
    journal.delivery(session, second, promise=True)
    second.state = AWAIT_PUBCOMP  # a state change replaces the row
    journal.delivery(session, second, promise=True)
    journal.inbound_qos2(session, 42)
    retained = _message("r/1", retain=True)
    journal.retained(retained)
    store.apply(journal.take())

    state = stores().load()
    stored = state.sessions["c"]
    assert (stored.protocol_version, stored.expiry_interval, stored.will_delay,
            stored.disconnected_at) == (5, 300, 5, disconnected_at)
    assert stored.will == will
    assert state.subscriptions == {"c": {"a/+": options}}
    deliveries = every_delivery(store := stores(), store.load(), "c")
    assert sorted(deliveries) == [1, 2]
    assert (deliveries[1].qos, deliveries[1].retain, deliveries[1].packet_id,
            deliveries[1].subscription_ids) == (1, False, None, (7,))
    assert (deliveries[2].packet_id, deliveries[2].state, deliveries[2].retain) == (
        9, AWAIT_PUBCOMP, True)
    loaded = deliveries[1].message
    assert (loaded.topic, loaded.payload, loaded.properties) == (body.topic, body.payload,
                                                                 body.properties)
    assert loaded.expires_at is not None and abs(loaded.expires_at - body.expires_at) < 1
    assert state.inbound_qos2 == {"c": {42}}
    if keeps_retained(store):
        assert state.retained["r/1"].payload == retained.payload


def test_deletes(stores: Reopen) -> None:
    store = stores()
    journal = Journal()
    gone, kept = _session("gone", 0xFFFFFFFF, 4), _session("kept", 10, 4)
    for session in (gone, kept):
        journal.session(session, promise=True)
        journal.subscription(session, "x", Options())
        journal.delivery(session, Delivery(1, _message(), 1, False), promise=True)
    journal.subscription(kept, "y", Options())
    journal.delivery(kept, Delivery(2, _message(), 1, False), promise=True)
    journal.inbound_qos2(gone, 1)
    journal.inbound_qos2(kept, 5)
    journal.retained(_message("r", retain=True))
    store.apply(journal.take())
    store = stores()
    journal.session_ended(gone, promise=True)
    journal.unsubscribed(kept, "x")
    journal.delivery_ended(kept, 1, promise=True)
    journal.inbound_qos2_released(kept, 5)
    journal.retained_deleted("r", promise=True)
    store.apply(journal.take())
    state = (store := stores()).load()
    assert set(state.sessions) == {"kept"}
    assert state.subscriptions.get("gone", {}) == {}
    assert set(state.subscriptions["kept"]) == {"y"}
    assert set(every_delivery(store, state, "kept")) == {2}
    assert not every_delivery(store, state, "gone")
    assert not state.inbound_qos2.get("kept") and not state.inbound_qos2.get("gone")
    assert state.retained == {}


def test_a_body_shared_by_queues_is_one_message(stores: Reopen) -> None:
    store = stores()
    journal = Journal()
    body = _message()
    for client in ("a", "b", "c"):
        journal.delivery(_session(client), Delivery(1, body, 1, False), promise=True)
    store.apply(journal.take())
    state = (store := stores()).load()
    loaded = {every_delivery(store, state, c)[1].message.store_id for c in ("a", "b", "c")}
    assert len(loaded) == 1


def test_queued_reads_a_range_of_queued_deliveries_oldest_first(stores: Reopen) -> None:
    store = stores()
    journal = Journal()
    session, other = _session("deep"), _session("other")
    for seq in range(1, 11):
        journal.delivery(session, Delivery(seq, _message(payload=bytes([seq])), 1, False),
                         promise=True)
    journal.delivery(other, Delivery(5, _message(), 1, False), promise=True)
    in_flight = Delivery(11, _message(), 2, False)
    in_flight.packet_id, in_flight.state = 4, AWAIT_PUBREC
    journal.delivery(session, in_flight, promise=True)
    store.apply(journal.take())
    journal.delivery_ended(session, 4, promise=False)  # waits (SQLite), yet is seen
    store.apply(journal.take())
    got = store.queued("deep", 3, 4)
    assert [d.seq for d in got] == [3, 5, 6, 7]  # in flight and other sessions' not among them
    assert [d.message.payload for d in got] == [b"\x03", b"\x05", b"\x06", b"\x07"]
    assert [d.seq for d in store.queued("deep", 8, 100)] == [8, 9, 10]
    assert store.queued("deep", 11, 100) == [] and store.queued("nobody", 0, 5) == []
    state = (store := stores()).load()
    assert set(every_delivery(store, state, "deep")) == {1, 2, 3, 5, 6, 7, 8, 9, 10, 11}
    assert set(state.deliveries.get("deep", {})) >= {11}  # in flight: always loaded


def test_sessions_that_are_not_persistent_record_nothing() -> None:
    journal = Journal()
    brief = _session("brief", expiry=0)
    journal.session(brief, promise=True)
    journal.subscription(brief, "x", Options())
    journal.delivery(brief, Delivery(1, _message(), 1, False), promise=True)
    journal.delivery_ended(brief, 1, promise=True)
    journal.inbound_qos2(brief, 1)
    journal.inbound_qos2_released(brief, 1)
    journal.unsubscribed(brief, "x")
    journal.session_ended(brief, promise=True)
    assert journal.take() == []


def test_a_session_stored_then_made_brief_is_deleted_once() -> None:
    journal = Journal()
    session = _session("shrinks")
    journal.session(session, promise=True)
    session.expiry_interval = 0
    journal.session(session, promise=False)  # e.g. DISCONNECT with Session Expiry 0
    journal.session_ended(session, promise=False)  # then the connection ends
    kinds = [type(change).__name__ for change in journal.take()]
    assert kinds == ["SessionSaved", "SessionDeleted"]


# -- when a change is durable (SQLite; the memory store has nothing to wait for) -------------

def _committed(path: Path, sql: str) -> int:
    """What another process sees: only what was committed."""
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(reader.execute(sql).fetchone()[0])
    finally:
        reader.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[SQLiteStore, Path]]:
    path = tmp_path / "promise.db"
    store = SQLiteStore(str(path), defer_seconds=60)
    store.load()
    yield store, path
    store.close()


# Each kind of change, recorded as the broker records it, and how to see it committed.
PROMISED: dict[str, tuple[Callable[[Journal, Session], None], str]] = {
    "session": (lambda j, s: j.session(s, promise=True),
                "SELECT count(*) FROM sessions"),
    "subscription": (lambda j, s: j.subscription(s, "a/#", Options(qos=1)),
                     "SELECT count(*) FROM subscriptions"),
    "queued delivery": (lambda j, s: j.delivery(s, Delivery(1, _message(), 1, False),
                                                promise=True),
                        "SELECT count(*) FROM queue"),
    "inbound QoS 2 id": (lambda j, s: j.inbound_qos2(s, 7),
                         "SELECT count(*) FROM inbound_qos2"),
    "retained message": (lambda j, s: j.retained(_message("r", retain=True)),
                         "SELECT count(*) FROM retained"),
}


@pytest.mark.parametrize("kind", sorted(PROMISED))
def test_a_promised_change_is_committed_and_synced_by_apply(
        sqlite_store: tuple[SQLiteStore, Path], kind: str) -> None:
    store, path = sqlite_store
    record, count = PROMISED[kind]
    journal = Journal()
    record(journal, _session("c"))
    syncs = store.wal_syncs
    store.apply(journal.take())
    assert store.wal_syncs == syncs + 1, f"{kind}: not synced before its packet may leave"
    assert _committed(path, count) == 1, f"{kind}: not committed by apply()"


def test_an_unpromised_queue_row_waits_and_flush_commits_it(
        sqlite_store: tuple[SQLiteStore, Path]) -> None:
    store, path = sqlite_store
    journal = Journal()
    session = _session("c")
    delivery = Delivery(1, _message(), 1, False)
    delivery.packet_id, delivery.state = 3, AWAIT_PUBREC
    journal.delivery(session, delivery, promise=False)
    commits, syncs = store.commits, store.wal_syncs
    store.apply(journal.take())
    assert (store.commits, store.wal_syncs) == (commits, syncs)
    assert _committed(path, "SELECT count(*) FROM queue") == 0
    assert store.flush_deadline() is not None
    store.flush()
    assert _committed(path, "SELECT count(*) FROM queue") == 1
    assert store.flush_deadline() is None


def test_an_unpromised_session_change_is_committed_without_a_sync(
        sqlite_store: tuple[SQLiteStore, Path]) -> None:
    store, path = sqlite_store
    journal = Journal()
    journal.session(_session("c"), promise=False)
    syncs = store.wal_syncs
    store.apply(journal.take())
    assert store.wal_syncs == syncs
    assert _committed(path, "SELECT count(*) FROM sessions") == 1


def test_a_failed_apply_stores_nothing_and_forgets_its_bodies(tmp_path: Path) -> None:
    """A full database (a real SQLITE_FULL from a size cap): nothing of the call is stored,
    and a body inserted in the rolled-back transaction is inserted again next time."""
    path = tmp_path / "full.db"
    store = SQLiteStore(str(path), max_size=64 * 1024)
    store.load()
    journal = Journal()
    session = _session("c")
    journal.session(session, promise=True)
    store.apply(journal.take())
    small = _message("small", retain=True)
    journal.retained(small)  # its body is inserted first, then the big one fails
    journal.retained(_message("big", payload=os.urandom(256 * 1024), retain=True))
    with pytest.raises(StoreWriteError):
        store.apply(journal.take())
    assert small.store_id is None
    assert _committed(path, "SELECT count(*) FROM messages") == 0
    journal.retained(small)
    store.apply(journal.take())
    store.close()
    reopened = SQLiteStore(str(path))
    assert reopened.load().retained["small"].payload == small.payload
    reopened.close()
