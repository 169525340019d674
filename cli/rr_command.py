"""``mqlite rr``: request / response like mosquitto_rr. Subscribe to the response topic
(``-e``), publish the request (``-t``) with the MQTT 5 Response Topic and a Correlation Data
of its own, print the first response that carries it back, exit."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import mqlite.client as mqtt

from .client_options import EXIT_TIMED_OUT, add_common, connected_client, fail
from .pub_command import payloads
from .sub_command import add_output, printed


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("rr", add_help=False, help="publish a request, print the response",
                                 description="Request / response like mosquitto_rr.")
    add_common(parser, default_version="5")
    parser.add_argument("-t", "--topic", default=None, help="topic to publish the request to")
    parser.add_argument("-e", "--response-topic", required=True,
                        help="topic to wait on for the response")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--message", help="the request's payload")
    source.add_argument("-f", "--file", help="send this file's contents as the request")
    source.add_argument("-s", "--stdin-file", action="store_true",
                        help="send all of standard input as the request")
    source.add_argument("-n", "--null-message", action="store_true",
                        help="send an empty request")
    add_output(parser)
    parser.add_argument("-W", "--timeout", type=float, default=0,
                        help="give up after this many seconds (exit code 27)")
    parser.add_argument("-R", "--no-retained", action="store_true",
                        help="ignore retained messages on the response topic")
    parser.set_defaults(run=run, stdin_line=False, retain=False)


def run(args: argparse.Namespace) -> int:
    if not args.topic and not args.url:
        return fail("No request topic given (-t).", quiet=args.quiet)
    correlation = os.urandom(8).hex().encode()
    responses: list[mqtt.MQTTMessage] = []
    subscribed: list[Any] = []

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.retain and args.no_retained:
            return
        if client.protocol == mqtt.MQTTv5:  # another requester's answer is not ours
            theirs = getattr(message.properties, "CorrelationData", None)
            if theirs is not None and theirs != correlation:
                return
        responses.append(message)

    client = connected_client(args, "rr", on_message)
    if isinstance(client, int):
        return client
    client.on_subscribe = lambda c, u, mid, codes, props: subscribed.append(codes)
    client.subscribe(args.response_topic, args.qos,
                     properties=args.properties.get("subscribe"))
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not subscribed:  # the request goes once the response topic is listened to
            client.loop(0.1)
            if client.socket() is None:
                return fail("Connection lost", quiet=args.quiet)
        properties = args.properties.get("publish")
        if client.protocol == mqtt.MQTTv5:
            properties = properties or mqtt.Properties(mqtt.PacketTypes.PUBLISH)
            properties.ResponseTopic = args.response_topic
            properties.CorrelationData = correlation
        for payload in payloads(args):
            client.publish(args.topic, payload, args.qos, False, properties)
        while not responses:
            if client.socket() is None:
                return fail("Connection lost", quiet=args.quiet)
            if deadline is not None and time.monotonic() >= deadline:
                if not args.quiet:
                    print("Timed out", file=sys.stderr)
                return EXIT_TIMED_OUT
            client.loop(0.1)
        sys.stdout.buffer.write(printed(args, responses[0]))
        sys.stdout.buffer.flush()
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect(properties=args.properties.get("disconnect"))
        while client.socket() is not None and client.want_write():
            client.loop(0.1)
    return 0
