"""Persistent state across restarts and kill -9, expiry while the broker is down, overflow
policies, storage failure, and the clear errors for a corrupt or locked database."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mqlite.broker import SQLiteStore
from mqlite.protocol import (
    Disconnect,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
)

from ..broker.helpers import RawClient
from ..conftest import BrokerFactory
from .test_durability import integrity, start, subscribe_offline


def _publish(broker_address: tuple[str, int], topic: str, payload: bytes, qos: int = 1,
             retain: bool = False, version: int = 4, properties: Properties | None = None) -> None:
    pub = RawClient(broker_address, version=version)
    pub.connect(client_id="publisher")
    pub.send(Publish(topic=topic, payload=payload, qos=qos, retain=retain, packet_id=1,
                     properties=properties or Properties()))
    if qos:
        assert isinstance(pub.receive(), Puback)
    pub.close()


def test_retained_and_subscriptions_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    broker = start(db)
    subscribe_offline(broker, "keeper", "live/#", 1)
    _publish(broker.address, "config/mode", b"eco", retain=True)
    broker.proc.kill()
    broker.proc.wait()
    broker = start(db)
    late = RawClient(broker.address)
    late.connect(client_id="late")
    late.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="config/#")]))
    assert isinstance(late.receive(), Suback)
    retained = late.receive()
    assert isinstance(retained, Publish) and (retained.payload, retained.retain) == (b"eco", True)
    _publish(broker.address, "live/1", b"after restart")
    keeper = RawClient(broker.address)
    assert keeper.connect(client_id="keeper", clean_start=False).session_present
    message = keeper.receive()
    assert isinstance(message, Publish) and message.payload == b"after restart"
    assert broker.terminate() == 0
    assert integrity(db) == "ok"


def test_clean_session_discards_the_stored_session(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    broker = start(db)
    subscribe_offline(broker, "wiped", "w/#", 1)
    _publish(broker.address, "w/1", b"queued")
    clean = RawClient(broker.address)
    assert clean.connect(client_id="wiped", clean_start=True).session_present is False
    clean.send(Disconnect())
    clean.expect_closed()
    broker.proc.kill()
    broker.proc.wait()
    broker = start(db)
    again = RawClient(broker.address)
    assert again.connect(client_id="wiped", clean_start=False).session_present is False
    assert broker.terminate() == 0


def test_session_and_message_expiry_count_while_the_broker_is_down(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    broker = start(db)
    short = RawClient(broker.address, version=5)
    short.connect(client_id="short", clean_start=False,
                  properties=Properties(session_expiry_interval=1))
    short.send(Disconnect())
    short.expect_closed()
    long = RawClient(broker.address, version=5)
    long.connect(client_id="long", clean_start=False,
                 properties=Properties(session_expiry_interval=3600))
    long.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="e", qos=1)]))
    long.receive()
    long.send(Disconnect())
    long.expect_closed()
    _publish(broker.address, "e", b"expires", version=5,
             properties=Properties(message_expiry_interval=1))
    _publish(broker.address, "e", b"lasts", version=5,
             properties=Properties(message_expiry_interval=3600))
    assert broker.terminate() == 0
    threading.Event().wait(1.5)  # the subject is time passing while the broker is down
    broker = start(db)
    assert RawClient(broker.address, version=5).connect(
        client_id="short", clean_start=False,
        properties=Properties(session_expiry_interval=1)).session_present is False
    back = RawClient(broker.address, version=5)
    assert back.connect(client_id="long", clean_start=False,
                        properties=Properties(session_expiry_interval=3600)).session_present
    message = back.receive()
    assert isinstance(message, Publish) and message.payload == b"lasts"
    assert 3590 < (message.properties.message_expiry_interval or 0) <= 3600
    back.ping()  # nothing else was queued: the expired message is gone
    assert broker.terminate() == 0


@pytest.mark.parametrize("policy,expected", [("drop-oldest", list(range(5, 10))),
                                             ("drop-newest", list(range(5)))])
def test_queue_overflow_policies(make_broker: BrokerFactory, tmp_path: Path, policy: str,
                                 expected: list[int]) -> None:
    broker = make_broker(db=str(tmp_path / "q.db"), max_queued_messages=5,
                         queue_overflow=policy)
    sub = RawClient(broker.address)
    sub.connect(client_id="small", clean_start=False)
    sub.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="q", qos=1)]))
    sub.receive()
    sub.close()
    for i in range(10):
        _publish(broker.address, "q", str(i).encode())
    assert broker.core.stats.messages_dropped == 5
    back = RawClient(broker.address)
    back.connect(client_id="small", clean_start=False)
    assert [int(payload) for payload in back.take(5)] == expected
    back.ping()


def test_storage_failure_stops_acknowledging_and_keeps_serving(make_broker: BrokerFactory,
                                                               tmp_path: Path) -> None:
    """A full database (a real SQLITE_FULL from a size cap) gets no PUBACK and a closed
    connection; the broker goes on, and what it did acknowledge is stored."""
    db = tmp_path / "full.db"
    broker = make_broker(store=SQLiteStore(str(db), max_size=256 * 1024))
    control = RawClient(broker.address)
    control.connect(client_id="control", keep_alive=0)
    sub = RawClient(broker.address)
    sub.connect(client_id="hoarder", clean_start=False)
    sub.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="big", qos=1)]))
    sub.receive()
    sub.close()
    pub = RawClient(broker.address)
    pub.connect(client_id="filler")
    acked = 0
    for i in range(1, 200):
        pub.send(Publish(topic="big", payload=os.urandom(8192), qos=1, packet_id=i))
        try:
            packet = pub.receive()
        except AssertionError:
            break  # closed without an acknowledgement: the write failed
        assert isinstance(packet, Puback | Disconnect)
        if isinstance(packet, Disconnect):
            break
        acked += 1
    else:
        raise AssertionError("the database never filled up")
    assert 0 < acked < 199
    control.ping()  # still serving
    broker.stop()
    store = SQLiteStore(str(db))
    stored = store.load()
    on_disk = len(stored.deliveries.get("hoarder", {})) + len(store.queued("hoarder", 0, 1000))
    store.close()
    assert on_disk >= acked  # everything acknowledged is on disk


def test_database_file_is_private(tmp_path: Path) -> None:
    db = tmp_path / "private.db"
    broker = start(db)
    subscribe_offline(broker, "x", "x", 1)
    for path in (db, Path(f"{db}-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    broker.terminate()


def _run_broker(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "--port", "0",
                           "--db", str(db)], capture_output=True, text=True, timeout=30)


def test_corrupt_file_gives_a_clear_error_and_is_not_touched(tmp_path: Path) -> None:
    db = tmp_path / "corrupt.db"
    garbage = b"this is not an SQLite database" * 100
    db.write_bytes(garbage)
    done = _run_broker(db)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "not a usable SQLite database" in errors[0]
    assert db.read_bytes() == garbage


def test_damaged_database_fails_its_check(tmp_path: Path) -> None:
    db = tmp_path / "damaged.db"
    broker = start(db)
    subscribe_offline(broker, "x", "x", 1)
    broker.terminate()
    data = bytearray(db.read_bytes())
    for page in range(4096, len(data), 4096):  # every b-tree page header after the first
        data[page: page + 8] = b"\xff" * 8
    db.write_bytes(bytes(data))
    done = _run_broker(db)
    assert done.returncode == 1
    assert "ERROR" in done.stderr and str(db) in done.stderr
    assert db.read_bytes() == bytes(data)


def test_locked_database_gives_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    broker = start(db)
    done = _run_broker(db)
    assert done.returncode == 1
    assert f"in use by another mqlite broker (pid {broker.proc.pid})" in done.stderr
    assert broker.terminate() == 0


def test_sessions_command_reads_while_the_broker_runs(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    broker = start(db)
    subscribe_offline(broker, "offline-one", "a/#", 1)
    _publish(broker.address, "a/1", b"waiting")
    online = RawClient(broker.address)
    online.connect(client_id="online-one", clean_start=False)
    broker.wait_for_log("client online-one connected")
    listing = subprocess.run([sys.executable, "-m", "mqlite.cli", "sessions", "--db", str(db),
                              "--json"], capture_output=True, text=True, timeout=30)
    rows = {row["client_id"]: row for row in json.loads(listing.stdout)}
    assert rows["offline-one"]["online"] is False and rows["offline-one"]["queued"] == 1
    assert rows["offline-one"]["subscriptions"] == 1
    assert rows["online-one"]["online"] is True
    table = subprocess.run([sys.executable, "-m", "mqlite.cli", "sessions", "--db", str(db)],
                           capture_output=True, text=True, timeout=30).stdout
    assert "offline-one" in table and "2 session(s)" in table
    show = subprocess.run([sys.executable, "-m", "mqlite.cli", "sessions", "show",
                           "offline-one", "--db", str(db)], capture_output=True, text=True,
                          timeout=30).stdout
    assert "a/#" in show and "a/1" in show and "queued" in show
    missing = subprocess.run([sys.executable, "-m", "mqlite.cli", "sessions", "show", "nobody",
                              "--db", str(db)], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "no session 'nobody'" in missing.stderr
    assert broker.terminate() == 0


def test_expiry_keeps_counting_across_several_restarts(make_broker: BrokerFactory,
                                                       tmp_path: Path) -> None:
    """Two restarts, each within the 2 s expiry, add up to more than it: the session is gone.
    A restart must not reset the time the session has been disconnected."""
    db = str(tmp_path / "twice.db")
    broker = make_broker(db=db)
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="brief", clean_start=False,
                properties=Properties(session_expiry_interval=2))
    raw.send(Disconnect())
    raw.expect_closed()
    broker.stop()
    for _ in range(2):
        threading.Event().wait(1.2)  # the subject is time passing while the broker is down
        broker = make_broker(db=db)
        broker.stop()
    broker = make_broker(db=db)
    again = RawClient(broker.address, version=5)
    assert again.connect(client_id="brief", clean_start=False,
                         properties=Properties(session_expiry_interval=2)).session_present is False


def test_a_stored_queue_resumed_without_expiry_is_delivered_not_lost(
        make_broker: BrokerFactory, tmp_path: Path) -> None:
    """MQTT 5: a session whose queue the store holds, resumed with Session Expiry 0, stops
    being persistent; its queue comes back into memory before the store forgets the session."""
    broker = make_broker(db=str(tmp_path / "resume.db"))
    sub = RawClient(broker.address, version=5)
    sub.connect(client_id="shrinks", clean_start=False,
                properties=Properties(session_expiry_interval=600))
    sub.subscribe("q", qos=1)
    sub.close()
    for i in range(600):  # more than a batch read back at a time
        _publish(broker.address, "q", str(i).encode())
    assert broker.core.sessions["shrinks"].stored_queued == 600  # none in memory
    back = RawClient(broker.address, version=5)
    assert back.connect(client_id="shrinks", clean_start=False,
                        properties=Properties(session_expiry_interval=0)).session_present
    assert [int(payload) for payload in back.take(600)] == list(range(600))
    assert broker.core.queued_bytes_stored == 0
