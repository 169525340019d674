"""Load generator for the authentication benchmark: authenticated connects at a fixed rate,
while a QoS 0 stream from one client to another measures the broker's latency meanwhile.
One selector loop; prints one JSON line of results.

    python -m bench.auth_load --port PORT --users FILE [--rate 1000] [--seconds 5]
                              [--stream-rate 2000]

``FILE`` has a ``user password`` line per user; connect number i uses user i modulo their
number, so the users' count decides how many connects are the first for their credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import resource
import selectors
import socket
import statistics
import struct
import sys
import time

from mqlite.protocol import (
    Connack,
    Connect,
    Disconnect,
    PacketReader,
    Publish,
    Subscribe,
    Subscription,
    encode,
)

TOPIC = "bench/auth"
MAX_PENDING = 2_000  # connects in progress at once; past it the generator is the limit
_STAMP = struct.Struct("!d")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client(port: int, client_id: str, user: str, password: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(encode(Connect(client_id=client_id, keep_alive=0, username=user,
                                password=password.encode()), 4))
    reply = sock.recv(4)
    if len(reply) != 4 or reply[3] != 0:
        raise RuntimeError(f"{client_id} was refused: {reply!r}")
    return sock


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Connect:
    """One authenticated connect in progress: TCP connect, CONNECT, CONNACK, DISCONNECT."""

    __slots__ = ("reply", "sock", "started", "wire")

    def __init__(self, sock: socket.socket, wire: bytes, started: float) -> None:
        self.sock = sock
        self.wire = wire
        self.started = started
        self.reply = b""


def run(port: int, users: list[tuple[str, str]], rate: int, seconds: float,
        stream_rate: int) -> dict[str, float]:
    first_user, first_password = users[0]
    subscriber = _client(port, "stream-sub", first_user, first_password)
    subscriber.sendall(encode(Subscribe(packet_id=1, subscriptions=[
        Subscription(topic_filter=TOPIC, qos=0)]), 4))
    if len(subscriber.recv(5)) != 5:
        raise RuntimeError("no SUBACK")
    publisher = _client(port, "stream-pub", first_user, first_password)
    subscriber.setblocking(False)  # the publisher blocks: its writes are a few dozen bytes
    reader = PacketReader("client", version=4)
    disconnect = encode(Disconnect(), 4)
    selector = selectors.DefaultSelector()
    selector.register(subscriber, selectors.EVENT_READ, "stream")
    latencies: list[float] = []
    connect_times: list[float] = []
    refused = errors = started_connects = sent = 0
    pending = 0
    cpu_start = _cpu()
    start = time.perf_counter()
    end = start + seconds
    drain_until = end + 2.0  # then the last connects and messages may still land
    while True:
        now = time.perf_counter()
        if now >= end and ((pending == 0 and len(latencies) >= sent) or now >= drain_until):
            break
        if now < end:
            due = int((now - start) * rate) - started_connects
            for _ in range(min(due, MAX_PENDING - pending)):
                user, password = users[started_connects % len(users)]
                wire = encode(Connect(client_id=f"auth-{started_connects}", keep_alive=0,
                                      username=user, password=password.encode()), 4)
                started_connects += 1
                sock = socket.socket()
                sock.setblocking(False)
                code = sock.connect_ex(("127.0.0.1", port))
                if code not in (0, errno.EINPROGRESS):
                    errors += 1
                    sock.close()
                    continue
                selector.register(sock, selectors.EVENT_WRITE, _Connect(sock, wire, now))
                pending += 1
            messages = int((time.perf_counter() - start) * stream_rate) - sent
            if messages > 0:
                stamp = _STAMP.pack(time.perf_counter())  # just before it goes
                publisher.sendall(encode(Publish(topic=TOPIC, payload=stamp), 4) * messages)
                sent += messages
        events = selector.select(0.001)
        # The stream's reads first: the connects' work must not count as broker latency.
        events.sort(key=lambda event: event[0].data != "stream")
        for key, mask in events:
            data = key.data
            if data == "stream":
                chunk = subscriber.recv(65536)
                arrived = time.perf_counter()
                for packet in reader.feed(chunk):
                    if isinstance(packet, Publish):
                        latencies.append(arrived - _STAMP.unpack(packet.payload)[0])
                continue
            job: _Connect = data
            try:
                if mask & selectors.EVENT_WRITE:
                    job.sock.send(job.wire)
                    selector.modify(job.sock, selectors.EVENT_READ, job)
                    continue
                chunk = job.sock.recv(16)
            except OSError:
                errors += 1
                chunk = b""
            job.reply += chunk
            if chunk and len(job.reply) < 4:
                continue
            selector.unregister(job.sock)
            pending -= 1
            if len(job.reply) >= 4:
                connack = next(iter(PacketReader("client", version=4).feed(job.reply[:4])))
                if isinstance(connack, Connack) and connack.reason_code == 0:
                    connect_times.append(time.perf_counter() - job.started)
                    with contextlib.suppress(OSError):
                        job.sock.send(disconnect)
                else:
                    refused += 1
            elif chunk == b"":
                errors += 1
            job.sock.close()
    elapsed = time.perf_counter() - start
    return {
        "connects": len(connect_times),
        "connects_per_s": len(connect_times) / seconds,
        "connect_p50_ms": 1000 * _percentile(connect_times, 0.50),
        "connect_p99_ms": 1000 * _percentile(connect_times, 0.99),
        "refused": refused,
        "errors": errors,
        "unfinished": pending,
        "messages": len(latencies),
        "lost": sent - len(latencies),
        "latency_p50_ms": 1000 * _percentile(latencies, 0.50),
        "latency_p99_ms": 1000 * _percentile(latencies, 0.99),
        "latency_max_ms": 1000 * max(latencies, default=float("nan")),
        "latency_mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        "elapsed_s": elapsed,
        "load_cpu_s": _cpu() - cpu_start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.auth_load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", required=True, help="a file of 'user password' lines")
    parser.add_argument("--rate", type=int, default=1000, help="connects a second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--stream-rate", type=int, default=2000, help="QoS 0 messages a second")
    args = parser.parse_args()
    with open(args.users, encoding="utf-8") as file:
        users = [(line.split()[0], line.split()[1]) for line in file if line.strip()]
    resource.setrlimit(resource.RLIMIT_NOFILE, (20_000, 20_000))
    result = run(args.port, users, args.rate, args.seconds, args.stream_rate)
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
