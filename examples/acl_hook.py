"""An access-control hook: each device writes only under ``devices/<its client id>/`` and
reads only its own commands and the broadcasts; an operator sends the commands.

    python examples/acl_hook.py

Starts a broker with the hook and shows, for an MQTT 5 client "pump-1": a subscription to its
commands granted and one to another device's refused (SUBACK 0x87), a publish to its own
subtree accepted and one to another device's refused (PUBACK 0x87), and nothing delivered that
it may not read.

``on_acl_check`` is asked for each SUBSCRIBE filter and for each delivery (READ), and for each
PUBLISH, will and retained message (WRITE). It runs on the broker's thread for every message,
so it must be quick: string tests, no I/O. A client id with "+", "#" or "/" gets no access:
put in a topic it would be a wildcard or another level, and widen what the client may read
(the mistake behind CVE-2017-7650).
"""

from __future__ import annotations

import threading

import mqlite.client as mqtt
from mqlite.broker import Access, Broker, ClientInfo, Hook


class DeviceTopics(Hook):
    """Devices write ``devices/<id>/...`` and read ``commands/<id>/...`` and ``broadcast/...``;
    the operators (by client id here; with authentication, by username) write commands."""

    def __init__(self, operators: set[str]) -> None:
        self.operators = operators

    def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
        device = client.client_id
        if "+" in device or "#" in device or "/" in device:
            return False  # in a topic it would be a wildcard or another level: no access
        if access is Access.WRITE:
            if device in self.operators:
                return topic.startswith("commands/")
            return topic.startswith(f"devices/{device}/")
        # READ: a filter at SUBSCRIBE, a concrete topic at each delivery.
        return topic.startswith(("broadcast/", f"commands/{device}/"))


def main() -> None:
    with Broker("127.0.0.1", 0, hooks=[DeviceTopics(operators={"operator"})]) as broker:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id="pump-1", protocol=mqtt.MQTTv5)
        events: list[str] = []
        lock = threading.Condition()

        def record(line: str) -> None:
            with lock:
                events.append(line)
                lock.notify_all()

        client.on_subscribe = lambda c, u, mid, codes, props: record(
            f"subscribe {pending[mid]}: {codes[0]}")
        client.on_publish = lambda c, u, mid, rc, props: record(
            f"publish {pending[mid]}: {rc}")
        client.on_message = lambda c, u, m: record(f"received {m.topic}: {m.payload.decode()}")
        pending: dict[int, str] = {}
        client.connect("127.0.0.1", broker.address[1])
        client.loop_start()
        for topic_filter in ("commands/pump-1/#", "commands/pump-2/#"):
            pending[client.subscribe(topic_filter, qos=1)[1]] = topic_filter
        _wait(lock, events, 2)
        for topic in ("devices/pump-1/flow", "devices/pump-2/flow"):
            pending[client.publish(topic, "12.5", qos=1).mid] = topic
        _wait(lock, events, 4)
        # Another client sends commands to both pumps: pump-1 receives only its own.
        operator = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="operator")
        operator.connect("127.0.0.1", broker.address[1])
        operator.loop_start()
        operator.publish("commands/pump-2/start", "now", qos=1).wait_for_publish(10)
        operator.publish("commands/pump-1/start", "now", qos=1).wait_for_publish(10)
        _wait(lock, events, 5)
        operator.disconnect()
        operator.loop_stop()
        client.disconnect()
        client.loop_stop()
        print("\n".join(events))


def _wait(lock: threading.Condition, events: list[str], count: int) -> None:
    with lock:
        if not lock.wait_for(lambda: len(events) >= count, timeout=10):
            raise SystemExit(f"timed out with {events}")


if __name__ == "__main__":
    main()
