"""Deep offline queues live in SQLite, not in memory: 100,000 queued messages cost the broker
process little memory, drain in order, and survive kill -9 at a random moment of the drain
(QoS 2 exactly once). Broker processes, real sockets, real files."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from mqlite.protocol import (
    Connect,
    Disconnect,
    PacketReader,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    encode,
)

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess
from .test_durability import integrity, subscribe_offline

TOPIC = "deep/queue"


def start(db: Path) -> BrokerProcess:
    return BrokerProcess("--db", str(db), "--sync", "normal",
                         "--max-queued-messages", "1000000",
                         "--max-queued-bytes", str(1 << 30))


def publish_many(broker: BrokerProcess, count: int, qos: int, first: int = 0) -> None:
    """Publish ``count`` 64-byte messages numbered from ``first``, many unacknowledged at a
    time (QoS 2: as many as the broker's Receive Maximum), and wait for every
    acknowledgement."""
    window = 500 if qos == 1 else 100
    sock = socket.create_connection(broker.address, timeout=30)
    reader = PacketReader("client", version=4)
    sock.sendall(encode(Connect(client_id="deep-publisher", keep_alive=0), 4))
    completed = sent = 0
    connacked = False
    while completed < count:
        batch = []
        while connacked and sent < count and sent - completed < window:
            payload = str(first + sent).encode().ljust(64, b".")
            batch.append(encode(Publish(topic=TOPIC, payload=payload, qos=qos,
                                        packet_id=sent % 65_535 + 1), 4))
            sent += 1
        if batch:
            sock.sendall(b"".join(batch))
        data = sock.recv(1 << 16)
        assert data, "the broker closed the publisher's connection"
        answers = []
        for packet in reader.feed(data):
            if isinstance(packet, Pubrec):
                answers.append(encode(Pubrel(packet_id=packet.packet_id), 4))
            elif isinstance(packet, Puback | Pubcomp):
                completed += 1
            else:
                connacked = True
        if answers:
            sock.sendall(b"".join(answers))
    sock.close()


class Subscriber:
    """The persistent subscriber, acknowledging as a real client does; its QoS 2 state
    (ids awaiting PUBREL) outlives a connection, as a client's session does."""

    def __init__(self, qos: int) -> None:
        self.qos = qos
        self.awaiting_pubrel: set[int] = set()
        self.received: list[int] = []
        self.seen_last = False

    def drain(self, broker: BrokerProcess, until: int, kill_after: int | None = None) -> bool:
        """Take messages until number ``until - 1`` has arrived (True), or kill the broker
        with SIGKILL once ``kill_after`` more have (False)."""
        sub = RawClient(broker.address)
        assert sub.connect(client_id="deep", clean_start=False).session_present
        taken = 0
        while True:
            packet = sub.receive(timeout=30)
            if isinstance(packet, Pubrel):
                self.awaiting_pubrel.discard(packet.packet_id)
                sub.send(Pubcomp(packet_id=packet.packet_id))
            else:
                assert isinstance(packet, Publish) and packet.packet_id is not None
                number = int(packet.payload.rstrip(b"."))
                if self.qos == 2:
                    if packet.packet_id not in self.awaiting_pubrel:
                        self.awaiting_pubrel.add(packet.packet_id)
                        self.received.append(number)
                    sub.send(Pubrec(packet_id=packet.packet_id))
                else:
                    self.received.append(number)
                    sub.send(Puback(packet_id=packet.packet_id))
                self.seen_last = self.seen_last or number == until - 1
                taken += 1
                if kill_after is not None and taken >= kill_after:
                    broker.proc.kill()
                    broker.proc.wait()
                    sub.close()
                    return False
            if self.seen_last and not self.awaiting_pubrel:
                sub.send(Disconnect())
                sub.expect_closed()
                return True


def _rss_growth_kib(broker: BrokerProcess, before: int) -> int:
    return broker.rss_kib() - before


@pytest.mark.slow
def test_100000_queued_messages_stay_on_disk_and_drain_in_order(tmp_path: Path) -> None:
    db = tmp_path / "deep.db"
    broker = start(db)
    subscribe_offline(broker, "deep", TOPIC, 1)
    count = 100_000
    publish_many(broker, 1_000, 1)  # warms up what every run allocates once
    before = broker.rss_kib()
    publish_many(broker, count - 1_000, 1, first=1_000)
    queued_growth = _rss_growth_kib(broker, before)
    # In memory these would be ~30 MiB (a Delivery, a Message and its bytes each).
    assert queued_growth < 12 * 1024, f"RSS grew {queued_growth} KiB for {count} queued"
    subscriber = Subscriber(qos=1)
    assert subscriber.drain(broker, until=count)
    assert subscriber.received == list(range(count))
    assert _rss_growth_kib(broker, before) < 16 * 1024  # a window in memory, not the queue
    assert broker.terminate() == 0
    assert integrity(db) == "ok"


@pytest.mark.parametrize("qos", [1, 2])
def test_kill_9_while_a_deep_queue_drains_loses_nothing(tmp_path: Path, qos: int) -> None:
    db = tmp_path / "drain-kill.db"
    count = 20_000
    broker = start(db)
    subscribe_offline(broker, "deep", TOPIC, qos)
    publish_many(broker, count, qos)
    subscriber = Subscriber(qos)
    kill_after = random.Random(qos).randint(1_000, count - 1_000)
    assert not subscriber.drain(broker, until=count, kill_after=kill_after)
    assert integrity(db) == "ok"
    broker = start(db)
    assert subscriber.drain(broker, until=count)
    received = subscriber.received
    assert set(received) == set(range(count)), "a queued message was lost"
    if qos == 2:
        assert len(received) == count, "a QoS 2 message arrived twice"
    else:  # at least once: what was sent but not acknowledged before the kill comes again
        assert received[:kill_after] == list(range(kill_after))
    after = received[kill_after:]
    assert after == sorted(after), "delivered out of order after the restart"
    assert broker.terminate() == 0
    assert integrity(db) == "ok"
