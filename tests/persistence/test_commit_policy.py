"""When the broker commits and fsyncs: before every packet that promises something (PUBACK or
PUBREC for a stored message, PUBCOMP, SUBACK, CONNACK of a persistent session, an outbound QoS 2
PUBLISH or PUBREL, a queued QoS 0 message sent); and not in turns that only deliver queued QoS 1
messages and take their acknowledgements, whose writes wait, bounded in time and rows, since
losing them costs at most a redelivery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mqlite.broker import Broker, SQLiteStore
from mqlite.protocol import (
    Disconnect,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
)

from ..broker.helpers import RawClient, wait_until
from ..conftest import BrokerFactory


def wal_syncs(broker: Broker) -> int:
    store = broker.store
    assert isinstance(store, SQLiteStore)
    return store.wal_syncs


def queue_rows(db: Path, qos: int | None = None) -> int:
    """Queue rows as another process would read them: only what was committed."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        if qos is None:
            return int(connection.execute("SELECT count(*) FROM queue").fetchone()[0])
        return int(connection.execute("SELECT count(*) FROM queue WHERE qos = ?",
                                      (qos,)).fetchone()[0])
    finally:
        connection.close()


def subscribe(client: RawClient, topic_filter: str, qos: int) -> None:
    client.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter=topic_filter,
                                                                   qos=qos)]))
    assert isinstance(client.receive(), Suback)


def offline_subscriber(broker: Broker, client_id: str, qos: int) -> None:
    before = wal_syncs(broker)
    sub = RawClient(broker.address)
    sub.connect(client_id=client_id, clean_start=False)
    assert wal_syncs(broker) > before, "CONNACK of a persistent session before its sync"
    before = wal_syncs(broker)
    subscribe(sub, "t/#", qos)
    assert wal_syncs(broker) > before, "SUBACK before the subscription was synced"
    sub.send(Disconnect())
    sub.expect_closed()


def test_every_acknowledgement_of_a_stored_message_follows_a_sync(
        make_broker: BrokerFactory, tmp_path: Path) -> None:
    broker = make_broker(db=str(tmp_path / "s.db"))
    offline_subscriber(broker, "keeper", qos=2)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub", clean_start=False)  # so its inbound QoS 2 state is stored
    for packet_id in range(1, 21):
        before = wal_syncs(broker)
        pub.send(Publish(topic="t/1", payload=b"x", qos=1, packet_id=packet_id))
        assert isinstance(pub.receive(), Puback)
        assert wal_syncs(broker) > before, f"PUBACK {packet_id} before its sync"
    before = wal_syncs(broker)
    pub.send(Publish(topic="t/2", payload=b"y", qos=2, packet_id=30))
    assert isinstance(pub.receive(), Pubrec)
    assert wal_syncs(broker) > before, "PUBREC before its sync"
    before = wal_syncs(broker)
    pub.send(Pubrel(packet_id=30))
    assert isinstance(pub.receive(), Pubcomp)
    assert wal_syncs(broker) > before, "PUBCOMP before the QoS 2 state was synced"


def test_outbound_qos2_steps_follow_a_sync(make_broker: BrokerFactory, tmp_path: Path) -> None:
    broker = make_broker(db=str(tmp_path / "s.db"))
    sub = RawClient(broker.address)
    sub.connect(client_id="q2", clean_start=False)
    subscribe(sub, "t/#", 2)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    pub.send(Publish(topic="t/1", payload=b"once", qos=0))  # no ack, nothing stored for it
    assert isinstance(sub.receive(), Publish)
    before = wal_syncs(broker)
    pub.send(Publish(topic="t/1", payload=b"twice", qos=2, packet_id=7))
    message = sub.receive()
    assert isinstance(message, Publish) and message.qos == 2
    assert wal_syncs(broker) > before, "QoS 2 PUBLISH sent before its packet id was synced"
    before = wal_syncs(broker)
    sub.send(Pubrec(packet_id=message.packet_id))
    assert isinstance(sub.receive(), Pubrel)
    assert wal_syncs(broker) > before, "PUBREL sent before its state was synced"


def queue_offline(broker: Broker, count: int) -> None:
    """``count`` QoS 1 messages queued for the offline session "keeper"."""
    offline_subscriber(broker, "keeper", qos=1)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    for number in range(count):
        pub.send(Publish(topic="t/1", payload=str(number).encode(), qos=1,
                         packet_id=number % 60_000 + 1))
        assert isinstance(pub.receive(), Puback)
    pub.send(Disconnect())
    pub.expect_closed()


def drain(broker: Broker, count: int, client_id: str = "keeper") -> RawClient:
    """Resume ``client_id`` and take its ``count`` messages, acknowledging each; the
    connection stays open (its close would be a write of its own)."""
    sub = RawClient(broker.address)
    assert sub.connect(client_id=client_id, clean_start=False).session_present
    received = []
    while len(received) < count:
        message = sub.receive()
        assert isinstance(message, Publish)
        received.append(message.payload)
        sub.send(Puback(packet_id=message.packet_id))
    assert received == [str(number).encode() for number in range(count)]
    sub.ping()  # the last PUBACK has been handled
    return sub


def queue_then_drain(broker: Broker, count: int) -> RawClient:
    queue_offline(broker, count)
    return drain(broker, count)


def test_draining_a_queue_of_qos1_messages_neither_commits_nor_syncs_per_turn(
        make_broker: BrokerFactory, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    broker = make_broker(store=SQLiteStore(str(db), defer_seconds=60))
    store = broker.store
    assert isinstance(store, SQLiteStore)
    queue_offline(broker, 400)
    assert queue_rows(db) == 400
    commits, syncs = store.commits, store.wal_syncs
    sub = drain(broker, 400)
    # The CONNACK of the resumed session is owed a commit and a sync; the 20 or more turns of
    # draining at 20 messages in flight are owed nothing.
    assert store.commits - commits == 1
    assert store.wal_syncs - syncs == 1
    assert queue_rows(db) == 400, "the delivered rows' deletion should still wait"
    sub.close()
    broker.stop()
    assert queue_rows(db) == 0, "a clean stop commits what waited"


def test_deferred_writes_are_committed_within_their_time_bound_without_traffic(
        make_broker: BrokerFactory, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    broker = make_broker(store=SQLiteStore(str(db), defer_seconds=0.3))
    sub = queue_then_drain(broker, 100)
    wait_until(lambda: queue_rows(db) == 0, timeout=5.0,
               what="the deferred deletions committed by the idle broker")
    sub.close()


def test_deferred_writes_are_committed_at_the_row_bound(make_broker: BrokerFactory,
                                                         tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    broker = make_broker(store=SQLiteStore(str(db), defer_seconds=60),
                         max_queued_messages=10_000)
    sub = queue_then_drain(broker, 5000)  # past the 4,096 rows a store lets wait
    assert queue_rows(db) < 5000 - 4000
    sub.close()


def test_a_queued_qos0_message_sent_is_committed_at_once(make_broker: BrokerFactory,
                                                         tmp_path: Path) -> None:
    """Sent again after a crash, a QoS 0 message would arrive twice; so its sending is owed a
    commit even in a turn that is otherwise owed nothing."""
    db = tmp_path / "s.db"
    broker = make_broker(store=SQLiteStore(str(db), defer_seconds=60), queue_qos0=True)
    offline_subscriber(broker, "keeper", qos=1)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    for number in range(20):  # fills the subscriber's window of 20
        pub.send(Publish(topic="t/1", payload=b"one", qos=1, packet_id=number + 1))
        assert isinstance(pub.receive(), Puback)
    for _ in range(5):
        pub.send(Publish(topic="t/1", payload=b"zero", qos=0))
    pub.ping()
    assert queue_rows(db, qos=0) == 5
    sub = RawClient(broker.address)
    sub.connect(client_id="keeper", clean_start=False)
    first = [sub.receive() for _ in range(20)]
    assert all(isinstance(p, Publish) and p.payload == b"one" for p in first)
    assert queue_rows(db, qos=0) == 5
    # One acknowledgement opens the window: the QoS 0 messages go in a turn owed nothing else.
    assert isinstance(first[0], Publish) and first[0].packet_id is not None
    sub.send(Puback(packet_id=first[0].packet_id))
    rest = [sub.receive() for _ in range(5)]
    assert all(isinstance(p, Publish) and p.payload == b"zero" for p in rest)
    sub.ping()
    assert queue_rows(db, qos=0) == 0
    sub.close()


def test_sync_normal_never_fsyncs(make_broker: BrokerFactory, tmp_path: Path) -> None:
    broker = make_broker(db=str(tmp_path / "s.db"), sync="normal")
    sub = RawClient(broker.address)
    sub.connect(client_id="keeper", clean_start=False)
    subscribe(sub, "t/#", 1)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    pub.send(Publish(topic="t/1", payload=b"x", qos=1, packet_id=1))
    assert isinstance(pub.receive(), Puback)
    assert wal_syncs(broker) == 0


def message_bodies(db: Path) -> int:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        connection.close()


def test_delivered_message_bodies_are_swept(make_broker: BrokerFactory, tmp_path: Path) -> None:
    """A body that two sessions' queues share is deleted once nobody refers to it: while
    running, once deletions reach half the bodies (so a sweep's scan costs a constant per
    deletion); all of them at start-up."""
    db = tmp_path / "s.db"
    broker = make_broker(store=SQLiteStore(str(db), defer_seconds=60),
                         max_queued_messages=10_000)
    offline_subscriber(broker, "watcher", qos=1)
    queue_offline(broker, 3000)
    assert message_bodies(db) == 3000, "one body for the two queue rows of each message"
    drain(broker, 3000).close()
    drain(broker, 3000, client_id="watcher").close()
    broker.stop()
    assert queue_rows(db) == 0
    assert message_bodies(db) <= 1500, "no sweep while 3,000 of 3,000 bodies were orphaned"
    make_broker(db=str(db))  # load() sweeps what is left
    assert message_bodies(db) == 0


def test_a_message_queued_for_one_session_is_one_row(make_broker: BrokerFactory,
                                                     tmp_path: Path) -> None:
    """No body row for a message only one queue holds: it is inline in its queue row, and
    acknowledged rows go (in range deletes) with nothing left to sweep."""
    db = tmp_path / "s.db"
    broker = make_broker(db=str(db), max_queued_messages=10_000)
    queue_offline(broker, 500)
    assert (queue_rows(db), message_bodies(db)) == (500, 0)
    drain(broker, 500).close()
    broker.stop()
    assert (queue_rows(db), message_bodies(db)) == (0, 0)
