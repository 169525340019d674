"""A persistent session: messages published while the subscriber is away wait for it.

    python examples/persistent_subscriber.py [--host HOST] [--port PORT]

The subscriber connects with clean_session=False, subscribes and leaves; a publisher sends three
QoS 1 messages; the subscriber comes back (session present) and receives them.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import mqlite.client as mqtt

TOPIC = "examples/persistent"


def run_subscriber(host: str, port: int, expected: int) -> list[str]:
    received: list[str] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id="example-persistent", clean_session=False)

    def on_connect(c: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        print(f"subscriber connected, session present: {flags.session_present}")
        c.subscribe(TOPIC, qos=1)
        if expected == 0:
            done.set()

    def on_message(c: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received.append(message.payload.decode())
        if len(received) == expected:
            done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    if not done.wait(10):
        raise SystemExit("timed out")
    client.disconnect()
    client.loop_stop()
    return received


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()

    run_subscriber(args.host, args.port, expected=0)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                            client_id="example-persistent-publisher")
    publisher.connect(args.host, args.port)
    publisher.loop_start()
    for n in range(3):
        publisher.publish(TOPIC, f"sent while away {n}", qos=1).wait_for_publish(10)
    publisher.disconnect()
    publisher.loop_stop()
    for text in run_subscriber(args.host, args.port, expected=3):
        print(f"received: {text}")


if __name__ == "__main__":
    main()
