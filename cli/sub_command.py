"""``mqlite sub``: subscribe and print like mosquitto_sub (payload per line; -v adds topic)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import mqlite.client as mqtt

from .client_options import EXIT_TIMED_OUT, add_common, connected_client, fail


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sub", add_help=False, help="subscribe and print messages",
                                 description="Subscribe like mosquitto_sub.")
    add_common(parser)
    parser.add_argument("-t", "--topic", action="append", required=True,
                        help="topic filter to subscribe to (may repeat)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the topic before each payload")
    parser.add_argument("-C", "--count", type=int, default=0,
                        help="exit after this many messages")
    parser.add_argument("-W", "--timeout", type=float, default=0,
                        help="exit after this many seconds without finishing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    received = 0
    out = sys.stdout.buffer

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        if args.count and received >= args.count:
            return
        received += 1
        if args.verbose:
            # As mosquitto_sub -v: an empty payload reads "(null)".
            out.write(message.topic.encode() + b" " + (message.payload or b"(null)") + b"\n")
        else:
            out.write(message.payload + b"\n")
        out.flush()

    client = connected_client(args, "sub", on_message)
    if isinstance(client, int):
        return client
    client.subscribe([(topic, args.qos) for topic in args.topic])
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not (args.count and received >= args.count):
            if client.socket() is None:
                return fail("Connection lost")
            if deadline is not None and time.monotonic() >= deadline:
                print("Timed out", file=sys.stderr)
                return EXIT_TIMED_OUT
            client.loop(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        while client.socket() is not None and client.want_write():
            client.loop(0.1)
    return 0
