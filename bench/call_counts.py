"""Python function calls per routed message inside the broker's loop turns: a measure that,
unlike throughput, does not move with the machine's load, for comparing two versions of the
hot path. An in-process broker's loop is turned by hand, with ``sys.setprofile`` counting
"call" events during the turns only; the clients are raw sockets in the same thread.

    python -m bench.call_counts [--count 20000]

Paths: QoS 0 1->1, QoS 1 1->1, QoS 1 to a persistent subscriber (SQLite), and draining
QoS 1 messages queued for an offline persistent session. Batching varies a little from run to
run, so QoS 0 moves by a few hundredths between runs of the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from types import FrameType
from typing import Any

from mqlite.broker import Broker
from mqlite.protocol import (
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    Puback,
    Publish,
    Subscribe,
    Subscription,
    encode,
)


class Counted:
    """An in-process broker whose loop turns can be counted."""

    def __init__(self, **settings: Any) -> None:
        self.broker = Broker(port=0, sys_interval=0, **settings)
        self.loop = self.broker._open()  # turned here, not by a thread
        self.calls = 0

    def _count(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            self.calls += 1

    def turn(self, counted: bool = False) -> None:
        if counted:
            sys.setprofile(self._count)
        try:
            self.loop.turn(max_wait=0)
        finally:
            if counted:
                sys.setprofile(None)

    def client(self, client_id: str, clean: bool = True) -> tuple[socket.socket, PacketReader]:
        sock = socket.create_connection(self.broker.address)
        sock.sendall(encode(Connect(client_id=client_id, clean_start=clean), 4))
        sock.setblocking(False)
        reader = PacketReader("client", version=4)
        self.until(sock, reader, lambda packets: bool(packets))
        return sock, reader

    def until(self, sock: socket.socket, reader: PacketReader,
              done: Callable[[list[Packet]], bool], counted: bool = False,
              each: Callable[[Packet], None] | None = None) -> list[Packet]:
        packets: list[Packet] = []
        while not done(packets):
            self.turn(counted)
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            for packet in reader.feed(data):
                packets.append(packet)
                if each is not None:
                    each(packet)
        return packets

    def subscribe(self, sock: socket.socket, reader: PacketReader, qos: int) -> None:
        sock.sendall(encode(Subscribe(packet_id=1, subscriptions=[
            Subscription(topic_filter="t", qos=qos)]), 4))
        self.until(sock, reader, lambda packets: bool(packets))


def routed(qos: int, persistent: bool, count: int) -> float:
    settings: dict[str, Any] = {}
    if persistent:
        settings["db"] = os.path.join(tempfile.mkdtemp(), "counts.db")
    bench = Counted(**settings)
    sub, sub_reader = bench.client("sub", clean=not persistent)
    bench.subscribe(sub, sub_reader, qos)
    pub, _ = bench.client("pub")
    bench.calls = 0
    sent = received = 0
    while received < count:
        if sent < count and sent - received < 100:
            pub.sendall(b"".join(encode(Publish(
                topic="t", payload=b"x" * 64, qos=qos,
                packet_id=(sent + i) % 65_000 + 1 if qos else None), 4) for i in range(50)))
            sent += 50
        bench.turn(counted=True)
        try:
            data = sub.recv(1 << 20)
        except BlockingIOError:
            data = b""
        for packet in sub_reader.feed(data):
            if isinstance(packet, Publish):
                received += 1
                if packet.qos == 1:
                    sub.sendall(encode(Puback(packet_id=packet.packet_id), 4))
        with contextlib.suppress(BlockingIOError):
            pub.recv(1 << 20)  # the PUBACKs
    return bench.calls / count


def drained(count: int) -> float:
    bench = Counted(db=os.path.join(tempfile.mkdtemp(), "counts.db"),
                    max_queued_messages=count * 2)
    sub, sub_reader = bench.client("keeper", clean=False)
    bench.subscribe(sub, sub_reader, 1)
    sub.sendall(encode(Disconnect(), 4))
    for _ in range(50):
        bench.turn()
    sub.close()
    pub, pub_reader = bench.client("pub")
    for start in range(0, count, 500):
        pub.sendall(b"".join(encode(Publish(topic="t", payload=b"x" * 64, qos=1,
                                            packet_id=(start + i) % 60_000 + 1), 4)
                             for i in range(500)))
        bench.until(pub, pub_reader, lambda packets: len(packets) >= 500)
    bench.calls = 0
    # Connected by hand: the first read may hold queued messages beside the CONNACK.
    sub = socket.create_connection(bench.broker.address)
    sub.sendall(encode(Connect(client_id="keeper", clean_start=False), 4))
    sub.setblocking(False)
    sub_reader = PacketReader("client", version=4)
    delivered = [0]

    def acknowledge(packet: Packet) -> None:
        if isinstance(packet, Publish):
            delivered[0] += 1
            sub.sendall(encode(Puback(packet_id=packet.packet_id), 4))

    bench.until(sub, sub_reader, lambda packets: delivered[0] >= count, counted=True,
                each=acknowledge)
    return bench.calls / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    print(f"QoS 0, 1 -> 1:                {routed(0, False, args.count):.2f} calls/message")
    print(f"QoS 1, 1 -> 1:                {routed(1, False, args.count):.2f} calls/message")
    print(f"QoS 1, persistent subscriber: {routed(1, True, args.count):.2f} calls/message")
    print(f"QoS 1 queued, drained:        {drained(args.count):.2f} calls/message")


if __name__ == "__main__":
    main()
