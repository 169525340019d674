"""``mqlite pub``: publish like mosquitto_pub (a message, a file, stdin lines, or nothing)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from .client_options import add_common, connected_client, fail


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("pub", add_help=False, help="publish messages",
                                 description="Publish like mosquitto_pub.")
    add_common(parser)
    parser.add_argument("-t", "--topic", default=None, help="topic to publish to")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--message", help="the payload")
    source.add_argument("-f", "--file", help="send this file's contents as the payload")
    source.add_argument("-l", "--stdin-line", action="store_true",
                        help="send each line of standard input as a message")
    source.add_argument("-s", "--stdin-file", action="store_true",
                        help="send all of standard input as one message")
    source.add_argument("-n", "--null-message", action="store_true",
                        help="send an empty message")
    parser.add_argument("-r", "--retain", action="store_true", help="retain the message")
    parser.set_defaults(run=run)


def payloads(args: argparse.Namespace) -> Iterator[bytes]:
    if args.message is not None:
        yield args.message.encode()
    elif args.file is not None:
        with open(args.file, "rb") as handle:
            yield handle.read()
    elif args.stdin_file:
        yield sys.stdin.buffer.read()
    elif args.stdin_line:
        for line in sys.stdin.buffer:
            yield line.rstrip(b"\r\n")
    else:
        yield b""


def run(args: argparse.Namespace) -> int:
    if not (args.message is not None or args.file or args.stdin_line or args.stdin_file
            or args.null_message):
        return fail("Both topic and message must be supplied.\n\nUse 'mqlite pub --help' to "
                    "see usage.", quiet=args.quiet)
    client = connected_client(args, "pub")
    if isinstance(client, int):
        return client
    if not args.topic:
        client.disconnect()
        return fail("No topic specified (-t, or a topic in -L's URL).", quiet=args.quiet)
    try:
        client.loop_start()
        for payload in payloads(args):
            info = client.publish(args.topic, payload, args.qos, args.retain,
                                  args.properties.get("publish"))
            if not info.wait_for_publish(30):
                return fail("Timed out publishing", quiet=args.quiet)
    except (OSError, ValueError, RuntimeError) as exc:
        return fail(str(exc), quiet=args.quiet)
    finally:
        client.disconnect(properties=args.properties.get("disconnect"))
        client.loop_stop()
    return 0
