"""Drive the client from your own select loop with the external-loop contract.

    python examples/select_loop.py [--host HOST] [--port PORT]

Subscribes, publishes three messages to itself at QoS 1, prints them and disconnects.
"""

from __future__ import annotations

import argparse
import selectors
from typing import Any

import mqlite.client as mqtt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()

    selector = selectors.DefaultSelector()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="example-select")

    # The contract: open -> (register write -> unregister write)* -> close.
    def on_open(c: Any, userdata: Any, sock: Any) -> None:
        selector.register(sock, selectors.EVENT_READ)

    def on_register_write(c: Any, userdata: Any, sock: Any) -> None:
        selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def on_unregister_write(c: Any, userdata: Any, sock: Any) -> None:
        selector.modify(sock, selectors.EVENT_READ)

    def on_close(c: Any, userdata: Any, sock: Any) -> None:
        selector.unregister(sock)

    client.on_socket_open = on_open
    client.on_socket_register_write = on_register_write
    client.on_socket_unregister_write = on_unregister_write
    client.on_socket_close = on_close

    received: list[str] = []
    client.on_connect = lambda c, u, flags, rc, props: c.subscribe("examples/select", qos=1)

    def on_subscribe(c: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        for n in range(3):
            c.publish("examples/select", f"message {n}", qos=1)

    def on_message(c: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        print(f"{message.topic}: {message.payload.decode()}")
        received.append(message.payload.decode())
        if len(received) == 3:
            c.disconnect()

    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(args.host, args.port)

    while client.socket() is not None:
        # next_timeout(): how long until loop_misc() has keepalive work to do.
        timeout = min(client.next_timeout() or 1.0, 1.0)
        for _key, events in selector.select(timeout):
            if events & selectors.EVENT_READ:
                client.loop_read()
            if events & selectors.EVENT_WRITE and client.socket() is not None:
                client.loop_write()
        client.loop_misc()
    print("disconnected")


if __name__ == "__main__":
    main()
