"""MQTT 5 user properties by the hundred thousand: what one packet full of them costs.

    python -m bench.properties [--counts 10000,40000,100000] [--rounds 7]
                               [--brokers mqlite,mosquitto]

Two measurements:

- decode: the protocol core alone, one PUBLISH with N user properties fed whole to a
  PacketReader; best and median of the rounds (the best sidesteps scheduler noise).
- stall: a broker process (pinned to CPU 0, this process to CPU 1) gets that PUBLISH at QoS 1
  from one client while a second client pings it, one PINGREQ at a time, until the PUBACK
  comes; reported is the longest round trip the second client saw (median over the rounds),
  and the broker's CPU time for the packet. That wait is what every other client pays.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import threading
import time

from mqlite.protocol import (
    Connect,
    PacketReader,
    Pingreq,
    Properties,
    Publish,
    encode,
)

from .brokers import BROKER_CPU, LOAD_CPU, BrokerProcess


def _packet(count: int) -> bytes:
    pairs = tuple(("k", "v") for _ in range(count))
    return encode(Publish(topic="bench/props", payload=b"x", qos=1, packet_id=1,
                          properties=Properties(user_property=pairs)), 5)


def decode_ms(data: bytes, count: int) -> float:
    reader = PacketReader("client", version=5)
    start = time.perf_counter()
    packets = list(reader.feed(data))
    elapsed = time.perf_counter() - start
    if len(packets) != 1 or len(packets[0].properties.user_property) != count:
        raise AssertionError("the packet did not decode to its properties")
    del packets  # freed outside the clock
    return elapsed * 1000


def _connect(port: int, client_id: str) -> tuple[socket.socket, PacketReader]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = PacketReader("client", version=5)
    sock.sendall(encode(Connect(client_id=client_id, keep_alive=0, protocol_version=5), 5))
    _next_packet(sock, reader)  # CONNACK
    return sock, reader


def _next_packet(sock: socket.socket, reader: PacketReader) -> object:
    while True:
        for packet in reader.feed(b""):
            return packet
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the broker closed the connection")
        reader.feed(data)


def stall_ms(broker: BrokerProcess, data: bytes) -> tuple[float, float]:
    """(the longest PINGREQ round trip a second client saw while the broker took the packet,
    in ms; the broker's CPU ms from the first byte sent to the PUBACK)."""
    publisher, publisher_reader = _connect(broker.port, "props-publisher")
    control, control_reader = _connect(broker.port, "props-control")
    acknowledged = threading.Event()

    def publish() -> None:
        publisher.sendall(data)
        _next_packet(publisher, publisher_reader)  # PUBACK: the broker is done with it
        acknowledged.set()

    cpu_before = broker.cpu_seconds()
    thread = threading.Thread(target=publish)
    thread.start()
    longest = 0.0
    while not acknowledged.is_set():
        start = time.perf_counter()
        control.sendall(encode(Pingreq(), 5))
        _next_packet(control, control_reader)
        longest = max(longest, time.perf_counter() - start)
    thread.join()
    cpu = broker.cpu_seconds() - cpu_before
    publisher.close()
    control.close()
    return longest * 1000, cpu * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10000,40000,100000")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--brokers", default="mqlite,mosquitto")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    brokers = [b for b in args.brokers.split(",") if b]
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    print(f"python {platform.python_version()} on {platform.machine()}; broker on CPU "
          f"{BROKER_CPU}, this process on CPU {LOAD_CPU}; best / median of {args.rounds}")
    print(f"{'user properties':>16}{'bytes':>10}{'decode best':>13}{'median':>9}"
          + "".join(f"{name + ' stall':>18}{'cpu':>9}" for name in brokers))
    running = {name: BrokerProcess(name) for name in brokers}
    try:
        for count in counts:
            data = _packet(count)
            decodes = [decode_ms(data, count) for _ in range(args.rounds)]
            row = (f"{count:>16,}{len(data):>10,}{min(decodes):>10.1f} ms"
                   f"{statistics.median(decodes):>6.1f} ms")
            for broker in running.values():
                stalls = [stall_ms(broker, data) for _ in range(args.rounds)]
                waited = statistics.median(s[0] for s in stalls)
                cpu = statistics.median(s[1] for s in stalls)
                row += f"{waited:>15.1f} ms{cpu:>6.0f} ms"
            print(row, flush=True)
    finally:
        for broker in running.values():
            broker.stop()


if __name__ == "__main__":
    main()
