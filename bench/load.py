"""Load generator for the broker benchmarks, run as its own process (pinned to its own CPU).

Packets are encoded before the clock starts and written to raw non-blocking sockets from one
selector loop; received traffic is counted by bytes where every packet has the same size, so
the generator does as little per message as it can. Prints one JSON line of results.

    python -m bench.load {qos0,qos1,latency,hol,idle,fill,drain} --port PORT [options]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import selectors
import socket
import sys
import time

from mqlite.protocol import Connect, Publish, Subscribe, Subscription, encode

TOPIC = "bench/t"


def _connect(port: int, client_id: str, clean: bool = True) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(encode(Connect(client_id=client_id, keep_alive=0, clean_start=clean), 4))
    _read_exactly(sock, 4)  # CONNACK
    return sock


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def _subscribe(sock: socket.socket, topic_filter: str, qos: int) -> None:
    sock.sendall(encode(Subscribe(packet_id=1, subscriptions=[
        Subscription(topic_filter=topic_filter, qos=qos)]), 4))
    _read_exactly(sock, 5)  # SUBACK with one code


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def qos0(port: int, count: int, subscribers: int, payload: int, timeout: float) -> dict[str, float]:
    """One publisher, ``subscribers`` subscribers on a wildcard filter, QoS 0."""
    subs = [_connect(port, f"sub{i}") for i in range(subscribers)]
    for sock in subs:
        _subscribe(sock, "bench/#", 0)
    pub = _connect(port, "pub")
    packet = encode(Publish(topic=TOPIC, payload=bytes(payload)), 4)
    expected = count * len(packet)  # the broker forwards the same bytes to each subscriber
    batch = packet * 1000
    to_send = count
    received = dict.fromkeys(subs, 0)
    selector = selectors.DefaultSelector()
    for sock in (pub, *subs):
        sock.setblocking(False)
    for sock in subs:
        selector.register(sock, selectors.EVENT_READ)
    selector.register(pub, selectors.EVENT_WRITE)
    pending = b""
    done = 0
    cpu_start = _cpu()
    start = time.perf_counter()
    deadline = start + timeout
    while done < len(subs):
        if time.perf_counter() > deadline:
            break
        for key, _ in selector.select(1.0):
            sock = key.fileobj
            if sock is pub:
                if not pending:
                    if not to_send:
                        selector.unregister(pub)
                        continue
                    take = min(1000, to_send)
                    pending = batch if take == 1000 else packet * take
                    to_send -= take
                with contextlib.suppress(BlockingIOError):
                    pending = pending[pub.send(pending):]
            else:
                assert isinstance(sock, socket.socket)
                received[sock] += len(sock.recv(1 << 20))
                if received[sock] >= expected:
                    selector.unregister(sock)
                    done += 1
    elapsed = time.perf_counter() - start
    delivered = sum(received.values()) // len(packet)
    return {"elapsed": elapsed, "messages": count, "deliveries": delivered,
            "lost": count * subscribers - delivered, "generator_cpu": _cpu() - cpu_start}


def qos1(port: int, count: int, window: int, payload: int, timeout: float,
         persistent: bool = False) -> dict[str, float]:
    """One publisher with ``window`` QoS 1 messages outstanding; the subscriber acks each.
    ``persistent``: the subscriber has a persistent session, so a durable broker stores every
    message before acknowledging it."""
    sub = _connect(port, "durable-sub" if persistent else "sub", clean=not persistent)
    _subscribe(sub, "bench/#", 1)
    pub = _connect(port, "pub")
    packets = [encode(Publish(topic=TOPIC, payload=bytes(payload), qos=1,
                              packet_id=i % 65535 + 1), 4) for i in range(count)]
    size = len(packets[0])
    id_offset = 1 + 1 + 2 + len(TOPIC)  # type, 1-byte remaining length, topic length, topic
    sent = acked = delivered = 0
    sub_buffer = b""
    ack_buffer = 0
    selector = selectors.DefaultSelector()
    pub.setblocking(False)
    sub.setblocking(False)
    selector.register(pub, selectors.EVENT_READ)
    selector.register(sub, selectors.EVENT_READ)
    cpu_start = _cpu()
    start = time.perf_counter()
    deadline = start + timeout
    pub.sendall(b"".join(packets[:window]))
    sent = min(window, count)
    while (acked < count or delivered < count) and time.perf_counter() < deadline:
        for key, _ in selector.select(1.0):
            if key.fileobj is pub:
                ack_buffer += len(pub.recv(1 << 20))
                new_acks = ack_buffer // 4 - acked  # PUBACK is 4 bytes
                acked += new_acks
                more = min(new_acks, count - sent)
                if more:
                    pub.setblocking(True)
                    pub.sendall(b"".join(packets[sent:sent + more]))
                    pub.setblocking(False)
                    sent += more
            else:
                sub_buffer += sub.recv(1 << 20)
                whole = len(sub_buffer) // size
                if whole:
                    acks = b"".join(b"\x40\x02" + sub_buffer[i * size + id_offset:
                                                              i * size + id_offset + 2]
                                    for i in range(whole))
                    sub_buffer = sub_buffer[whole * size:]
                    delivered += whole
                    sub.setblocking(True)
                    sub.sendall(acks)
                    sub.setblocking(False)
    elapsed = time.perf_counter() - start
    return {"elapsed": elapsed, "messages": count, "deliveries": delivered,
            "lost": count - delivered, "generator_cpu": _cpu() - cpu_start}


def latency(port: int, count: int, rate: int, payload: int,
            timeout: float) -> dict[str, float]:
    """QoS 0 messages at ``rate`` per second, each carrying its number; the time from just
    before its ``send`` to just after the subscriber's ``recv`` that completes it. The first
    tenth are a warm-up and not counted."""
    sub = _connect(port, "latency-sub")
    _subscribe(sub, "bench/#", 0)
    pub = _connect(port, "latency-pub")
    return _paced(pub, sub, count, rate, payload, timeout, qos=0)


def head_of_line(port: int, count: int, rate: int, payload: int,
                 timeout: float) -> dict[str, float]:
    """QoS 1 messages at ``rate`` per second to two subscribers of one filter: one never reads
    its socket (nor acks), the other acks everything. The healthy one's latency, measured as
    latency() does."""
    stuck = socket.create_connection(("127.0.0.1", port), timeout=30)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(encode(Connect(client_id="never-reads", keep_alive=0), 4))
    _read_exactly(stuck, 4)
    _subscribe(stuck, "bench/#", 1)  # and from now on it reads nothing
    sub = _connect(port, "healthy-sub")
    _subscribe(sub, "bench/#", 1)
    pub = _connect(port, "hol-pub")
    result = _paced(pub, sub, count, rate, payload, timeout, qos=1)
    stuck.close()
    return result


def _paced(pub: socket.socket, sub: socket.socket, count: int, rate: int, payload: int,
           timeout: float, qos: int) -> dict[str, float]:
    """Publish ``count`` numbered messages at ``rate`` per second and time each from just
    before its ``send`` to just after the ``recv`` that completes it at ``sub``, which
    acknowledges QoS 1 (the publisher's PUBACKs are read and ignored, never waited for)."""
    packets = [encode(Publish(topic=TOPIC, payload=i.to_bytes(8, "big") + bytes(payload - 8),
                              qos=qos, packet_id=i % 65535 + 1 if qos else None), 4)
               for i in range(count)]
    size = len(packets[0])
    id_at = 1 + 1 + 2 + len(TOPIC)  # type, 1-byte remaining length, topic length, topic
    number_at = id_at + 2 if qos else id_at
    sent_at = [0.0] * count
    latencies: list[float] = []
    sub.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sub, selectors.EVENT_READ)
    if qos:
        selector.register(pub, selectors.EVENT_READ)
    interval = 1.0 / rate
    buffer = b""
    sent = received = 0
    cpu_start = _cpu()
    start = next_send = time.perf_counter()
    deadline = start + timeout
    while received < count and time.perf_counter() < deadline:
        now = time.perf_counter()
        if sent < count and now >= next_send:
            sent_at[sent] = time.perf_counter()
            pub.sendall(packets[sent])
            sent += 1
            next_send += interval
            continue
        wait = next_send - now if sent < count else 1.0
        for key, _ in selector.select(wait):
            if key.fileobj is pub:
                pub.recv(1 << 16)  # PUBACKs (select said readable: this does not block)
                continue
            with contextlib.suppress(BlockingIOError):
                buffer += sub.recv(1 << 16)
            arrived = time.perf_counter()
            acks = []
            while len(buffer) >= size:
                number = int.from_bytes(buffer[number_at:number_at + 8], "big")
                latencies.append(arrived - sent_at[number])
                if qos:
                    acks.append(b"\x40\x02" + buffer[id_at:id_at + 2])
                buffer = buffer[size:]
                received += 1
            if acks:
                sub.setblocking(True)
                sub.sendall(b"".join(acks))
                sub.setblocking(False)
    elapsed = time.perf_counter() - start
    counted = sorted(latencies[count // 10:]) or [float("nan")]  # the first tenth: warm-up
    return {"elapsed": elapsed, "messages": count, "deliveries": received,
            "lost": count - received, "generator_cpu": _cpu() - cpu_start,
            "p50_us": counted[len(counted) // 2] * 1e6,
            "p99_us": counted[min(len(counted) - 1, len(counted) * 99 // 100)] * 1e6,
            "max_us": counted[-1] * 1e6}


def fill(port: int, count: int, window: int, payload: int, timeout: float) -> dict[str, float]:
    """Queue ``count`` QoS 1 messages for an offline persistent subscriber."""
    sub = _connect(port, "offline-sub", clean=False)
    _subscribe(sub, "bench/#", 1)
    sub.sendall(b"\xe0\x00")  # DISCONNECT: the session stays, offline
    sub.close()
    pub = _connect(port, "filler")
    packets = [encode(Publish(topic=TOPIC, payload=bytes(payload), qos=1,
                              packet_id=i % 65535 + 1), 4) for i in range(count)]
    cpu_start = _cpu()
    start = time.perf_counter()
    pub.sendall(b"".join(packets[:window]))
    sent = min(window, count)
    acked = 0
    buffered = 0
    while acked < count and time.perf_counter() - start < timeout:
        buffered += len(pub.recv(1 << 20))
        new = buffered // 4 - acked
        acked += new
        more = min(new, count - sent)
        if more:
            pub.sendall(b"".join(packets[sent:sent + more]))
            sent += more
    return {"elapsed": time.perf_counter() - start, "messages": count, "deliveries": acked,
            "lost": count - acked, "generator_cpu": _cpu() - cpu_start}


def drain(port: int, count: int, payload: int, timeout: float) -> dict[str, float]:
    """Reconnect the offline subscriber and take its queue, acking as it goes; the clock runs
    from CONNECT to the last message."""
    size = len(encode(Publish(topic=TOPIC, payload=bytes(payload), qos=1, packet_id=1), 4))
    id_offset = 1 + 1 + 2 + len(TOPIC)
    cpu_start = _cpu()
    start = time.perf_counter()
    sock = _connect(port, "offline-sub", clean=False)
    sock.settimeout(2.0)
    buffer = b""
    delivered = 0
    while delivered < count and time.perf_counter() - start < timeout:
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            break  # nothing more is coming: the rest was lost
        if not data:
            break
        buffer += data
        whole = len(buffer) // size
        if whole:
            sock.sendall(b"".join(b"\x40\x02" + buffer[i * size + id_offset:
                                                      i * size + id_offset + 2]
                                  for i in range(whole)))
            buffer = buffer[whole * size:]
            delivered += whole
    elapsed = time.perf_counter() - start
    sock.close()
    return {"elapsed": elapsed, "messages": count, "deliveries": delivered,
            "lost": count - delivered, "generator_cpu": _cpu() - cpu_start}


def idle(port: int, count: int, timeout: float) -> dict[str, float]:
    """Open ``count`` connections, CONNECT each (keep alive 60), wait for every CONNACK; then
    hold them until told on stdin, so the caller can read the broker's memory."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1000, count + 1000))
    cpu_start = _cpu()
    start = time.perf_counter()
    socks = []
    selector = selectors.DefaultSelector()
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(encode(Connect(client_id=f"idle{i}", keep_alive=60), 4))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        socks.append(sock)
    waiting = count
    deadline = start + timeout
    while waiting and time.perf_counter() < deadline:
        for key, _ in selector.select(1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock.recv(16):
                selector.unregister(key.fileobj)
                waiting -= 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, "connections": count - waiting,
                      "generator_cpu": _cpu() - cpu_start}), flush=True)
    sys.stdin.readline()  # hold the connections until the caller has measured
    for sock in socks:
        sock.close()
    return {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["qos0", "qos1", "latency", "hol", "idle", "fill",
                                             "drain"])
    parser.add_argument("--persistent", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--rate", type=int, default=1000, help="messages per second (latency)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.scenario == "qos0":
        result = qos0(args.port, args.count, args.subscribers, args.payload, args.timeout)
    elif args.scenario == "qos1":
        result = qos1(args.port, args.count, args.window, args.payload, args.timeout,
                      args.persistent)
    elif args.scenario == "latency":
        result = latency(args.port, args.count, args.rate, args.payload, args.timeout)
    elif args.scenario == "hol":
        result = head_of_line(args.port, args.count, args.rate, args.payload, args.timeout)
    elif args.scenario == "fill":
        result = fill(args.port, args.count, args.window, args.payload, args.timeout)
    elif args.scenario == "drain":
        result = drain(args.port, args.count, args.payload, args.timeout)
    else:
        idle(args.port, args.count, args.timeout)
        return
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
