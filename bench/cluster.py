"""Cluster mode on one machine: fan-out and QoS 1 throughput of ``mqlite broker --workers N``
(N = 1, 2, 4; N processes on one port, each a node, on a local redis-server), beside one
mqlite, mosquitto, amqtt and Aedes process in the same run; and the latency of a message
between two nodes against within one.

    python -m bench.cluster [--workers 1,2,4] [--brokers mosquitto,amqtt,aedes,mqlite]
                            [--subscribers 50] [--messages 4000] [--flows 8]
                            [--per-flow 5000] [--samples 2000] [--out FILE]

The single-process brokers are pinned to CPU 0 (bench/brokers.py); the workers are not
pinned, and the load generator (this process) shares the machine's cores with them: on a
2-core machine 2 and 4 workers compete with it, which the table says. Redis runs with
``appendfsync everysec`` (``--sync normal``), the workers' databases in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mqlite.protocol import Publish, encode

from .brokers import BrokerProcess, free_port
from .load import _connect, _read_exactly, _subscribe, qos0

START_TIMEOUT = 30.0


def _flow_topic(flow: int) -> str:
    return f"q1/{flow:03d}"  # one length for all: the subscriber cuts packets by size


def qos1_flows(port: int, flows: int, per_flow: int, window: int,
               timeout: float, persistent: bool = False) -> dict[str, float]:
    """``flows`` publishers, each with its own subscriber on its own topic, QoS 1 with
    ``window`` messages outstanding per publisher; the subscribers acknowledge each.
    ``persistent``: the subscribers' sessions are persistent (clean session 0), so every
    message is stored for them (a broker's store, or in cluster mode Redis)."""
    prefix = "q1p" if persistent else "q1"
    subs = [_connect(port, f"{prefix}-sub-{i}", clean=not persistent) for i in range(flows)]
    for index, sock in enumerate(subs):
        _subscribe(sock, _flow_topic(index), 1)
    pubs = [_connect(port, f"{prefix}-pub-{i}") for i in range(flows)]
    _warm(pubs, subs)
    packets = [[encode(Publish(topic=_flow_topic(f), payload=bytes(64), qos=1,
                               packet_id=i % 65535 + 1), 4) for i in range(per_flow)]
               for f in range(flows)]
    size = len(packets[0][0])
    id_offset = 1 + 1 + 2 + len(_flow_topic(0))
    selector = selectors.DefaultSelector()
    for flow, (pub, sub) in enumerate(zip(pubs, subs, strict=True)):
        pub.setblocking(False)
        sub.setblocking(False)
        selector.register(pub, selectors.EVENT_READ, ("pub", flow))
        selector.register(sub, selectors.EVENT_READ, ("sub", flow))
    sent = [0] * flows
    acked = [0] * flows
    ack_bytes = [0] * flows
    delivered = [0] * flows
    buffers = [b""] * flows
    start = time.perf_counter()
    for flow, pub in enumerate(pubs):
        pub.setblocking(True)
        pub.sendall(b"".join(packets[flow][:window]))
        pub.setblocking(False)
        sent[flow] = window
    deadline = start + timeout
    total = flows * per_flow
    while (sum(acked) < total or sum(delivered) < total) and time.perf_counter() < deadline:
        for key, _ in selector.select(1.0):
            kind, flow = key.data
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if kind == "pub":
                ack_bytes[flow] += len(sock.recv(1 << 20))
                new = ack_bytes[flow] // 4 - acked[flow]
                acked[flow] += new
                more = min(new, per_flow - sent[flow])
                if more:
                    sock.setblocking(True)
                    sock.sendall(b"".join(packets[flow][sent[flow]:sent[flow] + more]))
                    sock.setblocking(False)
                    sent[flow] += more
            else:
                buffers[flow] += sock.recv(1 << 20)
                whole = len(buffers[flow]) // size
                if whole:
                    data = buffers[flow]
                    acks = b"".join(b"\x40\x02" + data[i * size + id_offset:
                                                       i * size + id_offset + 2]
                                    for i in range(whole))
                    buffers[flow] = data[whole * size:]
                    delivered[flow] += whole
                    sock.setblocking(True)
                    sock.sendall(acks)
                    sock.setblocking(False)
    elapsed = time.perf_counter() - start
    for sock in (*pubs, *subs):
        sock.close()
    return {"elapsed": elapsed, "messages": total, "acknowledged": sum(acked),
            "deliveries": sum(delivered), "lost": total - sum(delivered)}


def _warm(pubs: list[socket.socket], subs: list[socket.socket]) -> None:
    """Until each flow's QoS 0 probe arrives: its route is known on the publisher's node."""
    for index, (pub, sub) in enumerate(zip(pubs, subs, strict=True)):
        probe = encode(Publish(topic=_flow_topic(index), payload=b"warm"), 4)
        sub.settimeout(0.05)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            pub.sendall(probe)
            try:
                _read_exactly(sub, len(probe))
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"flow {index}'s route never arrived") from None
        _drain(sub)


def _drain(sock: socket.socket) -> None:
    """Read what arrives within a moment: the last probes may still be on their way."""
    sock.settimeout(0.3)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pass
    sock.settimeout(30)


def latency(pub_port: int, sub_port: int, samples: int) -> dict[str, float]:
    """One QoS 0 message at a time, publisher on one port, subscriber on another: the time
    from its send to its arrival, in microseconds."""
    sub = _connect(sub_port, "lat-sub")
    _subscribe(sub, "lat/t", 0)
    pub = _connect(pub_port, "lat-pub")
    probe = encode(Publish(topic="lat/t", payload=bytes(8)), 4)
    sub.settimeout(0.05)
    while True:  # until the route is known where the publisher is
        pub.sendall(probe)
        try:
            _read_exactly(sub, len(probe))
            break
        except TimeoutError:
            continue
    _drain(sub)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        pub.sendall(probe)
        _read_exactly(sub, len(probe))
        times.append((time.perf_counter() - started) * 1e6)
    pub.close()
    sub.close()
    times.sort()
    return {"p50_us": statistics.median(times), "p99_us": times[int(len(times) * 0.99)]}


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (the workers, their redis-server)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return total


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _await_joined(processes: list[subprocess.Popen[str]], count: int) -> None:
    """Until ``count`` nodes logged that they joined (before, one refuses CONNECTs); their
    logs are read on, so that they never fill the pipe."""
    joined = threading.Semaphore(0)

    def read(process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if " joined (" in line:
                joined.release()

    for process in processes:
        threading.Thread(target=read, args=(process,), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    for _ in range(count):
        if not joined.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise RuntimeError("the cluster's nodes did not start")


class Workers:
    """``mqlite broker --workers N`` with its own redis-server, in a temp dir."""

    def __init__(self, count: int) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-workers{count}-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mqlite.cli", "broker", "--workers", str(count), "--port",
             str(self.port), "--db", str(Path(self._dir.name) / "mqlite.db"), "--sync",
             "normal", "--max-queued-messages", "1000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True)
        _await_joined([self.proc], count)  # every worker: a connect may land on any

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self._dir.cleanup()


class TwoNodes:
    """Two nodes with ports of their own on one redis-server, for latency between nodes."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-two-nodes-")
        directory = Path(self._dir.name)
        self.socket = str(directory / "redis.sock")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ports = [free_port(), free_port()]
        self.nodes = [subprocess.Popen(
            [sys.executable, "-m", "mqlite.cli", "broker", "--port", str(port), "--db",
             ":memory:", "--cluster", f"unix://{self.socket}", "--node-id", f"lat{index}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True) for index, port in enumerate(self.ports)]
        _await_joined(self.nodes, 2)

    def stop(self) -> None:
        for node in self.nodes:
            node.terminate()
            node.wait(30)
        self.redis.terminate()
        self.redis.wait(30)
        self._dir.cleanup()


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"fanout": {}, "qos1": {}, "qos1p": {}, "latency": {}}

    results["busy"] = {}
    results["lost"] = {}

    def measure(name: str, port: int, pid: int) -> None:
        busy = []
        for kind in ("fanout", "qos1", "qos1p"):
            before, generator_before = tree_cpu(pid), _own_cpu()
            if kind == "fanout":
                run = qos0(port, args.messages, args.subscribers, 64, 120.0)
            else:
                run = qos1_flows(port, args.flows, args.per_flow, 20, 120.0,
                                 persistent=kind == "qos1p")
            elapsed = run["elapsed"]
            results[kind][name] = run["deliveries"] / elapsed
            results["lost"][name] = results["lost"].get(name, 0) + run["lost"]
            busy.append(((tree_cpu(pid) - before) / elapsed,
                         (_own_cpu() - generator_before) / elapsed))
            print(f"{name}: {kind} {results[kind][name]:,.0f}/s (lost {run['lost']}), "
                  f"brokers {busy[-1][0]:.0%} / generator {busy[-1][1]:.0%} of a core",
                  flush=True)
        results["busy"][name] = busy

    for name in args.brokers:
        broker = BrokerProcess(name)
        try:
            measure(name, broker.port, broker.proc.pid)
            if name == "mosquitto":
                results["latency"]["mosquitto"] = latency(broker.port, broker.port,
                                                          args.samples)
        finally:
            broker.proc.terminate()
            broker.proc.wait(30)
    for count in args.workers:
        workers = Workers(count)
        try:
            measure(f"mqlite --workers {count}", workers.port, workers.proc.pid)
        finally:
            workers.stop()
    nodes = TwoNodes()
    try:
        results["latency"]["mqlite, one node"] = latency(nodes.ports[0], nodes.ports[0],
                                                         args.samples)
        results["latency"]["mqlite, across two nodes"] = latency(nodes.ports[1],
                                                                 nodes.ports[0], args.samples)
    finally:
        nodes.stop()
    return results


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    reference = results["fanout"].get("mosquitto")
    q_reference = results["qos1"].get("mosquitto")
    lines = [f"Fan-out: 1 publisher, {args.subscribers} subscribers, {args.messages} QoS 0 "
             f"messages of 64 bytes; QoS 1: {args.flows} publisher/subscriber pairs, "
             f"{args.per_flow} messages each, 20 in flight per publisher.", "",
             "CPU: the broker processes' (workers and Redis included) and the generator's, in "
             "shares of one core over the run (the machine has "
             f"{os.cpu_count()}); the single brokers are pinned to one core.", "",
             "| broker | fan-out deliveries/s | vs mosquitto | CPU brokers / generator "
             "| QoS 1 msg/s | vs mosquitto | CPU brokers / generator |",
             "|---|---|---|---|---|---|---|"]

    def ratio(value: float, to: float | None) -> str:
        return f"{value / to:.2f}x" if to else ""

    for name in results["fanout"]:
        fan, q1 = results["fanout"][name], results["qos1"][name]
        (fan_b, fan_g), (q1_b, q1_g) = results["busy"][name][:2]
        lines.append(f"| {name} | {fan:,.0f} | {ratio(fan, reference)} | {fan_b:.0%} / "
                     f"{fan_g:.0%} | {q1:,.0f} | {ratio(q1, q_reference)} | {q1_b:.0%} / "
                     f"{q1_g:.0%} |")
    p_reference = results["qos1p"].get("mosquitto")
    lines += ["", "Persistent QoS 1: the same flows with persistent subscribers (clean session "
              "0): every message is stored for its subscriber before the PUBACK (mosquitto "
              "and Aedes keep sessions in memory, mqlite in SQLite or, with workers, in "
              "Redis with appendfsync everysec).", "",
              "| broker | persistent QoS 1 msg/s | vs mosquitto | CPU brokers / generator |",
              "|---|---|---|---|"]
    for name in results["qos1p"]:
        value = results["qos1p"][name]
        brokers, generator = results["busy"][name][2]
        lines.append(f"| {name} | {value:,.0f} | {ratio(value, p_reference)} | "
                     f"{brokers:.0%} / {generator:.0%} |")
    lines += ["", "| latency, QoS 0, one message at a time | p50 | p99 |", "|---|---|---|"]
    for name, value in results["latency"].items():
        lines.append(f"| {name} | {value['p50_us']:.0f} us | {value['p99_us']:.0f} us |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4",
                        type=lambda text: [int(n) for n in text.split(",")])
    parser.add_argument("--brokers", default="mosquitto,amqtt,aedes,mqlite",
                        type=lambda text: [n for n in text.split(",") if n])
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--flows", type=int, default=8)
    parser.add_argument("--per-flow", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args()
    results = run(args)
    text = table(results, args)
    print(text)
    print(json.dumps(results))
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
