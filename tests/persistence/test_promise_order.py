"""A promised change is durable before the packet that promises it is written: at the moment
the store finishes applying a turn with a promised change, the turn's acknowledgement has not
reached the client's socket yet, and the WAL was synced in between. Real broker, real sockets,
a real SQLite file; the store only notes, after each apply, what the client had received."""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
from collections.abc import Sequence
from pathlib import Path

from mqlite.broker import SQLiteStore
from mqlite.broker.engine.journal import Change
from mqlite.protocol import Puback, Publish, Pubrec, Suback, Subscribe, Subscription

from ..broker.helpers import RawClient
from ..conftest import BrokerFactory


def unread_bytes(sock: socket.socket) -> int:
    return int(struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0])


class NotingStore(SQLiteStore):
    """A SQLite store that notes, for each apply with a promised change, how many bytes the
    watched client had waiting when the apply returned, and whether it synced."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.watched: socket.socket | None = None
        self.notes: list[tuple[str, int, bool]] = []

    def apply(self, changes: Sequence[Change]) -> None:
        syncs = self.wal_syncs
        super().apply(changes)
        promised = [type(change).__name__ for change in changes if change.promise]
        if promised and self.watched is not None:
            self.notes.append((",".join(promised), unread_bytes(self.watched),
                               self.wal_syncs > syncs))


def test_acknowledgements_leave_after_their_changes_are_synced(
        make_broker: BrokerFactory, tmp_path: Path) -> None:
    store = NotingStore(str(tmp_path / "order.db"))
    broker = make_broker(store=store)
    online = RawClient(broker.address)
    store.watched = online.sock
    online.connect(client_id="online", clean_start=False)
    online.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="t",
                                                                   qos=2)]))
    assert isinstance(online.receive(), Suback)
    pub = RawClient(broker.address)
    store.watched = pub.sock
    pub.connect(client_id="pub", clean_start=False)
    # A fresh message to an online persistent subscriber: straight into flight, its only
    # record promised by the PUBACK.
    pub.send(Publish(topic="t", payload=b"1", qos=1, packet_id=1))
    assert isinstance(pub.receive(), Puback)
    pub.send(Publish(topic="t", payload=b"2", qos=2, packet_id=2))
    assert isinstance(pub.receive(), Pubrec)
    assert [kinds for kinds, _, _ in store.notes] == [
        "SessionSaved", "SubscriptionSaved", "SessionSaved", "DeliverySaved",
        "DeliverySaved,InboundQos2Added"]
    for kinds, unread, synced in store.notes:
        assert unread == 0, f"the acknowledgement of {kinds} was written before its commit"
        assert synced, f"{kinds} not synced before its acknowledgement"
