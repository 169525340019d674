"""``mqlite sub``: subscribe and print like mosquitto_sub (payload per line; -v adds topic;
-F a format of one's own)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import mqlite.client as mqtt

from .client_options import EXIT_TIMED_OUT, add_common, connected_client, fail
from .output_format import render


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sub", add_help=False, help="subscribe and print messages",
                                 description="Subscribe like mosquitto_sub.")
    add_common(parser)
    parser.add_argument("-t", "--topic", action="append", default=[],
                        help="topic filter to subscribe to (may repeat)")
    parser.add_argument("-T", "--filter-out", action="append", default=[], metavar="FILTER",
                        help="do not print messages whose topic matches this (may repeat)")
    parser.add_argument("-U", "--unsubscribe", action="append", default=[], metavar="TOPIC",
                        help="unsubscribe from this filter first (may repeat)")
    add_output(parser)
    parser.add_argument("-C", "--count", type=int, default=0,
                        help="exit after this many messages")
    parser.add_argument("-W", "--timeout", type=float, default=0,
                        help="exit after this many seconds without finishing")
    parser.add_argument("-R", "--no-retained", action="store_true",
                        help="do not print retained (stale) messages")
    parser.add_argument("--retained-only", action="store_true",
                        help="print only retained messages; exit at the first other one")
    parser.add_argument("--remove-retained", action="store_true",
                        help="clear each retained message received (see -T)")
    parser.add_argument("-E", "--exit-after-subscribe", action="store_true",
                        help="exit once the subscriptions are acknowledged")
    parser.set_defaults(run=run)


def add_output(parser: argparse.ArgumentParser) -> None:
    """How a message is printed (shared with ``mqlite rr``)."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the topic before each payload")
    parser.add_argument("-F", "--format", default=None,
                        help="print each message in this format (%%t topic, %%p payload, ...)")
    parser.add_argument("-N", "--no-eol", action="store_true",
                        help="no end of line after each message")


def printed(args: argparse.Namespace, message: mqtt.MQTTMessage) -> bytes:
    """A message as mosquitto_sub prints it with these flags."""
    if args.format is not None:
        line = render(args.format, message)
    elif args.verbose:  # an empty payload reads "(null)", as mosquitto_sub prints it
        line = message.topic.encode() + b" " + (message.payload or b"(null)")
    else:
        line = message.payload
    return line if args.no_eol else line + b"\n"


def run(args: argparse.Namespace) -> int:
    received = 0
    finished = False
    out = sys.stdout.buffer

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal received, finished
        if finished or any(mqtt.topic_matches_sub(f, message.topic) for f in args.filter_out):
            return
        if args.retained_only and not message.retain:
            finished = True
            return
        if message.retain and args.remove_retained:
            client.publish(message.topic, None, 1, True)
        if message.retain and args.no_retained:
            return
        try:
            out.write(printed(args, message))
        except ValueError as exc:  # %J on a payload that is not JSON
            if not args.quiet:
                print(f"Error: {exc}", file=sys.stderr)
            return
        out.flush()
        received += 1
        if args.count and received >= args.count:
            finished = True

    acknowledged = []
    client = connected_client(args, "sub", on_message)
    if isinstance(client, int):
        return client
    if not args.topic:
        client.disconnect()
        return fail("You must specify a topic to subscribe to (-t, or a topic in -L's URL).",
                    quiet=args.quiet)
    client.on_subscribe = lambda c, u, mid, codes, props: acknowledged.append(codes)
    if args.unsubscribe:
        client.unsubscribe(args.unsubscribe, args.properties.get("unsubscribe"))
    client.subscribe([(topic, args.qos) for topic in args.topic],
                     properties=args.properties.get("subscribe"))
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not finished and not (args.exit_after_subscribe and acknowledged):
            if client.socket() is None:
                return fail("Connection lost", quiet=args.quiet)
            if deadline is not None and time.monotonic() >= deadline:
                if not args.quiet:
                    print("Timed out", file=sys.stderr)
                return EXIT_TIMED_OUT
            client.loop(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect(properties=args.properties.get("disconnect"))
        while client.socket() is not None and client.want_write():
            client.loop(0.1)
    return 0
