"""Client publish throughput: mqlite.client against paho-mqtt, same broker, same program.

    python -m bench.client_throughput [--messages 50000] [--runs 3] [--broker mosquitto]

Each run is a separate process pinned to CPU 1 (the broker to CPU 0) that connects, publishes
64-byte messages as fast as publish() takes them (QoS 1: 100 in flight for both), and stops
when the last one is complete (QoS 0: written; QoS 1: PUBACK). The broker is mosquitto by
default, so the client is what is measured. Medians of the runs, and the ratio, are printed.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from .brokers import LOAD_CPU, BrokerProcess

MODULES = {"paho": "paho.mqtt.client", "mqlite": "mqlite.client"}
PAYLOAD = b"x" * 64


def worker(module_name: str, port: int, qos: int, count: int) -> None:
    """Publish ``count`` messages and print the messages per second."""
    mqtt: Any = importlib.import_module(MODULES[module_name])
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, f"bench-{module_name}")
    client.max_inflight_messages_set(100)
    done = threading.Event()
    completed = 0

    def on_publish(c: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        nonlocal completed
        completed += 1
        if completed == count:
            done.set()

    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit("no CONNACK")
    started = time.perf_counter()
    for _ in range(count):
        client.publish("bench/client", PAYLOAD, qos=qos)
    if not done.wait(300):
        raise SystemExit(f"only {completed} of {count} completed")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    print(f"{count / elapsed:.0f}")


def measure(module_name: str, port: int, qos: int, count: int) -> float:
    result = subprocess.run(
        ["taskset", "-c", LOAD_CPU, sys.executable, "-m", "bench.client_throughput",
         "--worker", module_name, "--port", str(port), "--qos", str(qos),
         "--messages", str(count)],
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module_name} qos {qos} failed: {result.stderr[-1000:]}")
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # paho-mqtt keys queued messages by a mid that wraps at 65,535: more than that queued at
    # once and completions are lost (mqlite takes wire ids only in flight).
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--broker", default="mosquitto", choices=["mosquitto", "mqlite"])
    parser.add_argument("--worker", choices=sorted(MODULES), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--qos", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.port, args.qos, args.messages)
        return
    broker = BrokerProcess(args.broker)
    try:
        print(f"| client publish, 64 B, {args.messages:,} msgs, broker {args.broker} "
              f"| mqlite.client | paho-mqtt | ratio |")
        print("|---|---|---|---|")
        for qos in (0, 1):
            rates: dict[str, list[float]] = {"mqlite": [], "paho": []}
            for run in range(args.runs):
                for name in ("mqlite", "paho"):
                    rate = measure(name, broker.port, qos, args.messages)
                    rates[name].append(rate)
                    print(f"  qos {qos} run {run + 1} {name}: {rate:,.0f} msg/s",
                          file=sys.stderr, flush=True)
            ours, theirs = (statistics.median(rates[n]) for n in ("mqlite", "paho"))
            print(f"| QoS {qos} | {ours:,.0f} msg/s | {theirs:,.0f} msg/s | "
                  f"{ours / theirs:.2f}x |", flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
