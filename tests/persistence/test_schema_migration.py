"""A database written by the previous schema (1: every queue row refers to a body row) opens
in this one (2: a message queued for one session is inline in its row), its queued messages
delivered as they were stored, and the new rows inline beside the old."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from mqlite.broker import Broker
from mqlite.protocol import Puback, Publish

from ..broker.helpers import RawClient
from ..conftest import BrokerFactory

# Schema 1's tables as that version made them.
SCHEMA_1 = """
CREATE TABLE schema_version (version INTEGER);
CREATE TABLE sessions (client_id TEXT PRIMARY KEY, protocol_version INTEGER,
    expiry_interval INTEGER, will BLOB, will_delay INTEGER, connected_at FLOAT,
    disconnected_at FLOAT);
CREATE TABLE subscriptions (client_id TEXT, topic_filter TEXT, qos INTEGER, no_local INTEGER,
    retain_as_published INTEGER, retain_handling INTEGER, identifier INTEGER,
    PRIMARY KEY (client_id, topic_filter));
CREATE TABLE messages (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB, qos INTEGER,
    retain INTEGER, properties BLOB, expires_at FLOAT, origin TEXT, created_at FLOAT);
CREATE TABLE queue (client_id TEXT, seq INTEGER, message_id INTEGER, qos INTEGER,
    retain INTEGER, packet_id INTEGER, state INTEGER, subscription_ids TEXT,
    PRIMARY KEY (client_id, seq));
CREATE TABLE inbound_qos2 (client_id TEXT, packet_id INTEGER,
    PRIMARY KEY (client_id, packet_id));
CREATE TABLE retained (topic TEXT PRIMARY KEY, message_id INTEGER);
CREATE INDEX idx_queue_message_id ON queue (message_id);
CREATE INDEX idx_retained_message_id ON retained (message_id);
INSERT INTO schema_version VALUES (1);
"""


def write_schema_1(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    now = time.time()
    db.execute("INSERT INTO sessions VALUES ('old', 5, 3600, NULL, 0, ?, ?)", (now, now))
    db.execute("INSERT INTO subscriptions VALUES ('old', 't/#', 1, 0, 0, 0, NULL)")
    db.execute("INSERT INTO messages VALUES (1, 't/1', X'6f6e65', 1, 0, NULL, NULL, NULL, ?)",
               (now,))
    db.execute("INSERT INTO queue VALUES ('old', 1, 1, 1, 0, NULL, 0, NULL)")
    db.commit()
    db.close()


def stored(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_schema_1_database_opens_and_its_queue_is_delivered(
        make_broker: BrokerFactory, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_schema_1(path)
    broker: Broker = make_broker(db=str(path))
    assert stored(path, "SELECT version FROM schema_version") == [(2,)]
    publisher = RawClient(broker.address)
    publisher.connect(client_id="pub")
    publisher.send(Publish(topic="t/2", payload=b"two", qos=1, packet_id=1))
    assert isinstance(publisher.receive(), Puback)
    assert stored(path, "SELECT seq, message_id, topic FROM queue ORDER BY seq") == [
        (1, 1, None), (2, None, "t/2")], "the old row refers to its body, the new one inline"
    subscriber = RawClient(broker.address, version=5)
    assert subscriber.connect(client_id="old", clean_start=False).session_present
    received = []
    for _ in range(2):
        message = subscriber.receive()
        assert isinstance(message, Publish)
        received.append((message.topic, message.payload))
        subscriber.send(Puback(packet_id=message.packet_id))
    assert received == [("t/1", b"one"), ("t/2", b"two")]
