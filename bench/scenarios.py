"""The benchmark scenarios, each with its full and its quick (smoke test) counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    kind: str
    unit: str
    args: dict[str, int]
    quick: dict[str, int]
    # Variants run beside "mqlite" in this scenario only.
    variants: tuple[str, ...] = ()
    # The brokers this scenario runs against, if not all (why: in ``note``).
    only: tuple[str, ...] = ()
    note: str = ""
    # RabbitMQ (asked for with --brokers) runs only here: QoS 1 where its durable queues and
    # confirms compare with mqlite's promise, which mosquitto and Aedes do not make.
    durable_peer: bool = False


SCENARIOS = [
    Scenario("A", "QoS 0, 1 publisher -> 1 subscriber, 64-byte payloads", "qos0", "msg/s",
             {"count": 200_000, "subscribers": 1}, {"count": 5_000, "subscribers": 1}),
    Scenario("B", "QoS 0, 1 -> 10 fan-out through a wildcard filter", "qos0", "deliveries/s",
             {"count": 50_000, "subscribers": 10}, {"count": 1_000, "subscribers": 10}),
    Scenario("C", "QoS 1, window of 100, subscriber acks", "qos1", "msg/s",
             {"count": 50_000, "window": 100}, {"count": 2_000, "window": 100},
             durable_peer=True),
    Scenario("D", "5,000 idle keep-alive connections", "idle", "KiB/conn",
             {"count": 5_000}, {"count": 200}),
    Scenario("E", "20,000 QoS 1 queued offline, drained on reconnect; then kill -9", "drain",
             "s", {"count": 20_000, "window": 100}, {"count": 500, "window": 100}),
    Scenario("F", "latency at 1,000 msg/s, QoS 0, 1 -> 1", "latency", "µs",
             {"count": 5_000, "rate": 1_000}, {"count": 500, "rate": 1_000}),
    Scenario("G", "durable QoS 1 to a persistent subscriber, window of 100", "qos1", "msg/s",
             {"count": 50_000, "window": 100, "persistent": 1},
             {"count": 2_000, "window": 100, "persistent": 1}, variants=("mqlite-normal",),
             durable_peer=True),
    Scenario("H", "1,000,000 QoS 1 queued offline for one session, then drained", "deep", "s",
             {"count": 1_000_000, "window": 100}, {"count": 5_000, "window": 100},
             only=("mqlite", "mosquitto", "aedes"),
             note="amqtt queues at about 2,000 msg/s: a million would take its run past ten "
                  "minutes"),
    Scenario("I", "healthy subscriber's latency beside one that never reads, QoS 1 at "
                  "2,000 msg/s", "hol", "µs",
             {"count": 10_000, "rate": 2_000}, {"count": 500, "rate": 2_000}),
]
