"""Publish Python objects as msgpack and read them back.

    python examples/msgpack_payloads.py [--host HOST] [--port PORT]

With MQTT 5 the message carries the content type ``application/msgpack``.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import mqlite.client as mqtt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()

    got = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id="example-msgpack", protocol=mqtt.MQTTv5)

    def on_subscribe(c: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        c.publish_msgpack("examples/msgpack", {"sensor": "kitchen", "celsius": 21.5,
                                               "history": [20.9, 21.2]}, qos=1)

    def on_message(c: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        assert message.properties is not None
        print(f"content type: {message.properties.ContentType}")
        print(f"object: {message.unpack_msgpack()}")
        got.set()

    client.on_connect = lambda c, u, flags, rc, props: c.subscribe("examples/msgpack", 1)
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(args.host, args.port)
    client.loop_start()
    if not got.wait(10):
        raise SystemExit("timed out")
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
