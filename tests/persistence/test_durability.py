"""The durability promise, with real broker processes and real SQLite files: a message the
broker acknowledged is on disk. Restarts with SIGTERM and with SIGKILL at random moments of a
QoS 1 and a QoS 2 stream (20 kills), then every acknowledged message is delivered, QoS 2
exactly once, and the database passes PRAGMA integrity_check."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess

SENTINEL = b"sentinel"


def start(db: Path, *args: str) -> BrokerProcess:
    return BrokerProcess("--db", str(db), "--max-queued-messages", "100000", *args)


def integrity(db: Path) -> str:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def subscribe_offline(broker: BrokerProcess, client_id: str, topic_filter: str,
                      qos: int) -> None:
    """A persistent subscriber that subscribes, then goes away (cleanly)."""
    sub = RawClient(broker.address)
    sub.connect(client_id=client_id, clean_start=False)
    sub.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter=topic_filter,
                                                                qos=qos)]))
    assert isinstance(sub.receive(), Suback)
    sub.send(Disconnect())
    sub.expect_closed()


def stream_until_killed(broker: BrokerProcess, topic: str, qos: int, first: int,
                        kill_after: int, window: int = 10) -> list[int]:
    """Publish numbered messages, ``window`` in flight, and SIGKILL the broker once
    ``kill_after`` have completed; returns the numbers the publisher saw completed."""
    pub = RawClient(broker.address)
    pub.connect(client_id=f"pub-{first}")
    in_flight: dict[int, int] = {}  # packet id -> message number
    completed: list[int] = []
    number = first
    killed = False
    while True:
        while not killed and len(in_flight) < window:
            packet_id = number % 65_535 + 1
            in_flight[packet_id] = number
            pub.send(Publish(topic=topic, payload=str(number).encode(), qos=qos,
                             packet_id=packet_id))
            number += 1
        try:
            packet = pub.receive()
        except (AssertionError, ConnectionResetError):
            break  # the broker is gone
        if isinstance(packet, Pubrec):
            try:
                pub.send(Pubrel(packet_id=packet.packet_id))
            except (ConnectionResetError, BrokenPipeError):
                break  # the broker is gone
            continue
        assert isinstance(packet, Puback | Pubcomp)
        completed.append(in_flight.pop(packet.packet_id))
        if len(completed) >= kill_after and not killed:
            broker.proc.kill()  # SIGKILL, with messages in flight
            broker.proc.wait()
            killed = True
    assert killed
    return completed


def drain(broker: BrokerProcess, client_id: str, topic: str, qos: int) -> list[bytes]:
    """Reconnect the persistent subscriber and take everything queued for it, acknowledging
    as a real client does (QoS 2: PUBREC, PUBREL, PUBCOMP; a resent id is not a new message).
    A sentinel published after the restart marks the end."""
    pub = RawClient(broker.address)
    pub.connect(client_id="sentinel")
    pub.send(Publish(topic=topic, payload=SENTINEL, qos=qos, packet_id=1))
    pub.receive()
    sub = RawClient(broker.address)
    assert sub.connect(client_id=client_id, clean_start=False).session_present
    received: list[bytes] = []
    awaiting_pubrel: set[int] = set()
    while True:
        packet = sub.receive()
        if isinstance(packet, Pubrel):
            awaiting_pubrel.discard(packet.packet_id)
            sub.send(Pubcomp(packet_id=packet.packet_id))
            if received and received[-1] == SENTINEL and not awaiting_pubrel:
                break
            continue
        assert isinstance(packet, Publish) and packet.packet_id is not None
        if qos == 2:
            if packet.packet_id not in awaiting_pubrel:
                awaiting_pubrel.add(packet.packet_id)
                received.append(packet.payload)
            sub.send(Pubrec(packet_id=packet.packet_id))
        else:
            received.append(packet.payload)
            sub.send(Puback(packet_id=packet.packet_id))
            if packet.payload == SENTINEL:
                break
    sub.send(Disconnect())
    sub.expect_closed()
    assert received[-1] == SENTINEL
    return received[:-1]


@pytest.mark.parametrize("qos", [1, 2])
def test_sigkill_at_random_moments_loses_no_acknowledged_message(tmp_path: Path,
                                                                 qos: int) -> None:
    db = tmp_path / "kill.db"
    rng = random.Random(qos)  # deterministic "random" moments
    broker = start(db)
    subscribe_offline(broker, "durable", "kill/#", qos)
    number = 0
    for _cycle in range(10):
        acked = stream_until_killed(broker, "kill/stream", qos, number, rng.randint(1, 150))
        number = max(acked) + 100  # numbers never repeat across cycles
        assert integrity(db) == "ok"
        broker = start(db)
        delivered = [int(p) for p in drain(broker, "durable", "kill/stream", qos)]
        missing = set(acked) - set(delivered)
        assert not missing, f"acknowledged but lost after kill -9: {sorted(missing)[:10]}"
        assert delivered == sorted(delivered), "delivered out of order"
        if qos == 2:
            assert len(delivered) == len(set(delivered)), "a QoS 2 message arrived twice"
    assert broker.terminate() == 0
    assert integrity(db) == "ok"


def test_sigterm_restart_and_a_new_client_process_gets_everything(tmp_path: Path) -> None:
    db = tmp_path / "term.db"
    broker = start(db)
    subscribe_offline(broker, "reader", "news/#", 1)
    pub = RawClient(broker.address)
    pub.connect(client_id="writer")
    for i in range(100):
        pub.send(Publish(topic=f"news/{i}", payload=f"m{i}".encode(), qos=1, packet_id=i + 1))
    for _ in range(100):
        assert isinstance(pub.receive(), Puback)
    assert broker.terminate() == 0
    broker = start(db)
    client = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "resume_client.py"), broker.address[0],
         str(broker.address[1]), "reader", "100"], capture_output=True, text=True, timeout=30)
    lines = client.stdout.splitlines()
    assert lines[0] == "session_present=True", client.stderr
    assert lines[1:] == [f"m{i}" for i in range(100)]
    assert broker.terminate() == 0
