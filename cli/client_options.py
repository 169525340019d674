"""Flags shared by ``mqlite pub`` and ``mqlite sub``, spelled as mosquitto_pub/mosquitto_sub
spell them, and the connected client they describe."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import mqlite.client as mqtt

_VERSIONS = {"311": mqtt.MQTTv311, "mqttv311": mqtt.MQTTv311, "5": mqtt.MQTTv5,
             "mqttv5": mqtt.MQTTv5}
EXIT_TIMED_OUT = 27  # what mosquitto_sub -W exits with


class UsageError(Exception):
    pass


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("-h", "--host", default="localhost",
                        help="broker host (default: localhost)")
    parser.add_argument("-p", "--port", type=int, default=1883, help="broker port (default: 1883)")
    parser.add_argument("-i", "--id", default="", help="client id (default: assigned)")
    parser.add_argument("-k", "--keepalive", type=int, default=60, help="keepalive seconds")
    parser.add_argument("-q", "--qos", type=int, default=0, help="quality of service 0, 1 or 2")
    parser.add_argument("-u", "--username", help="user name")
    parser.add_argument("-P", "--pw", help="password")
    parser.add_argument("-V", "--protocol-version", default="311",
                        help="MQTT version: 311 or 5 (default: 311)")
    parser.add_argument("-c", "--disable-clean-session", action="store_true",
                        help="keep the session after disconnecting (needs -i)")
    parser.add_argument("--will-topic", help="topic of the will message")
    parser.add_argument("--will-payload", default="", help="payload of the will message")
    parser.add_argument("--will-qos", type=int, default=0, help="QoS of the will message")
    parser.add_argument("--will-retain", action="store_true", help="retain the will message")


def make_client(args: argparse.Namespace) -> mqtt.Client:
    if args.qos not in (0, 1, 2):
        raise UsageError(f"Invalid QoS given: {args.qos}")
    version = _VERSIONS.get(str(args.protocol_version).lower())
    if version is None:
        raise UsageError(f"Invalid protocol version {args.protocol_version!r}: use 311 or 5")
    if args.disable_clean_session and not args.id:
        raise UsageError("You must provide a client id if you are using the -c option.")
    if version == mqtt.MQTTv5:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=args.id, protocol=version, reconnect_on_failure=False)
    else:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.id, protocol=version,
                             clean_session=not args.disable_clean_session,
                             reconnect_on_failure=False)
    if args.username is not None:
        client.username_pw_set(args.username, args.pw)
    if args.will_topic:
        client.will_set(args.will_topic, args.will_payload, args.will_qos, args.will_retain)
    return client


def connect(client: mqtt.Client, args: argparse.Namespace, timeout: float = 10.0) -> None:
    """Connect and wait for CONNACK; raises ConnectionError if refused or cut off."""
    refused: list[str] = []
    client.on_connect = lambda c, u, f, rc, p: refused.append(str(rc)) if rc.is_failure else None
    if client.protocol == mqtt.MQTTv5 and args.disable_clean_session:
        # MQTT 5 has no clean-session flag: keep the session by asking it never to expire.
        properties = mqtt.Properties(mqtt.PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0xFFFFFFFF
        client.connect(args.host, args.port, args.keepalive, clean_start=False,
                       properties=properties)
    else:
        client.connect(args.host, args.port, args.keepalive)
    deadline = time.monotonic() + timeout
    while not client.is_connected():
        if refused or client.socket() is None:
            raise ConnectionError(refused[0] if refused else "Connection lost")
        if time.monotonic() > deadline:
            raise ConnectionError("Timed out waiting for CONNACK")
        client.loop(0.1)


def fail(text: str, code: int = 1) -> int:
    print(f"Error: {text}", file=sys.stderr)
    return code


def connected_client(args: argparse.Namespace, command: str,
                     on_message: Any = None) -> mqtt.Client | int:
    """A connected client for ``mqlite pub``/``sub``, or the exit code after saying why not."""
    try:
        client = make_client(args)
        client.on_message = on_message
        connect(client, args)
    except UsageError as exc:
        return fail(f"{exc}\n\nUse 'mqlite {command} --help' to see usage.")
    except OSError as exc:  # ConnectionError among them
        return fail(exc.strerror or str(exc))
    return client
