"""Run the broker inside your own program, next to a client.

    python examples/embedded_broker.py [--db sessions.db]

Starts a broker on a free port (sessions in SQLite, or in memory by default), connects a
client, sends itself a retained message, and stops the broker.
"""

from __future__ import annotations

import argparse
import threading

import mqlite.client as mqtt
from mqlite.broker import Broker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None, help="SQLite file for sessions (default: memory)")
    args = parser.parse_args()

    with Broker("127.0.0.1", 0, db=args.db) as broker:
        host, port = broker.address
        print(f"broker listening on {host}:{port}")
        got = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="example-embedded")
        client.on_message = lambda c, u, m: (print(f"{m.topic}: {m.payload.decode()} "
                                                    f"(retained: {m.retain})"), got.set())
        client.connect(host, port)
        client.loop_start()
        client.publish("examples/embedded", "hello from inside", qos=1,
                       retain=True).wait_for_publish(10)
        client.subscribe("examples/embedded", qos=1)
        if not got.wait(10):
            raise SystemExit("timed out")
        client.disconnect()
        client.loop_stop()
    print("broker stopped")


if __name__ == "__main__":
    main()
