"""Extend the broker with hooks: an allow-list authenticator and a topic-rewriting hook.

    python examples/hooks.py

Starts a broker with both hooks, shows a client with the right password connecting and one
without it refused, and a message published on "temp" arriving on "site/<client id>/temp".
Hooks run on the broker's thread: keep them quick (a slow hook stalls every client).
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import replace

import mqlite.client as mqtt
from mqlite.broker import Broker, ClientInfo, Hook, Message


class AllowList(Hook):
    """Only the listed users, with their passwords (compared in constant time)."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        expected = self.users.get(username or "")
        return expected is not None and password is not None and hmac.compare_digest(
            expected, password)


class PerClientTopics(Hook):
    """Every client publishes into its own subtree: "temp" becomes "site/<client id>/temp"."""

    def on_publish(self, client: ClientInfo, message: Message) -> Message | None:
        return replace(message, topic=f"site/{client.client_id}/{message.topic}")


def connect(port: int, client_id: str, password: str) -> tuple[mqtt.Client, str]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set("sensor", password)
    result: list[str] = []
    done = threading.Event()
    client.on_connect = lambda c, u, flags, rc, props: (result.append(str(rc)), done.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not done.wait(10):
        raise SystemExit("no CONNACK")
    return client, result[0]


def main() -> None:
    hooks = [AllowList({"sensor": b"s3cret"}), PerClientTopics()]
    with Broker("127.0.0.1", 0, hooks=hooks) as broker:
        port = broker.address[1]
        intruder, code = connect(port, "intruder", "guess")
        print(f"wrong password: {code}")
        intruder.loop_stop()
        sensor, code = connect(port, "kitchen", "s3cret")
        print(f"right password: {code}")
        got = threading.Event()
        sensor.on_message = lambda c, u, m: (print(f"received on {m.topic}: "
                                                   f"{m.payload.decode()}"), got.set())
        sensor.subscribe("site/#", qos=1)
        sensor.publish("temp", "21.5", qos=1)
        if not got.wait(10):
            raise SystemExit("timed out")
        sensor.disconnect()
        sensor.loop_stop()


if __name__ == "__main__":
    main()
