"""Flags shared by ``mqlite pub``, ``sub`` and ``rr``, spelled as mosquitto_pub, _sub and _rr
spell them (connection, credentials, will, TLS, ``-L`` URLs, ``-D`` MQTT 5 properties,
``-d``), the connected client they describe, and mosquitto's exit codes: the CONNACK's code
when the broker refuses the connection, 1 for other errors."""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import mqlite.client as mqtt

from .property_flags import PropertyError, parse

_VERSIONS = {"311": mqtt.MQTTv311, "mqttv311": mqtt.MQTTv311, "5": mqtt.MQTTv5,
             "mqttv5": mqtt.MQTTv5, "31": mqtt.MQTTv31, "mqttv31": mqtt.MQTTv31}
_TLS_VERSIONS = {"tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}
_URL_SCHEMES = {"mqtt": ("tcp", False, 1883), "mqtts": ("tcp", True, 8883),
                "ws": ("websockets", False, 80), "wss": ("websockets", True, 443)}
# MQTT 3.1.1 return codes from the reason codes the client reports them as.
_V3_CODES = {0x84: 1, 0x85: 2, 0x88: 3, 0x86: 4, 0x87: 5}
NEVER_EXPIRES = 0xFFFFFFFF
EXIT_TIMED_OUT = 27  # what mosquitto_sub -W and mosquitto_rr exit with


class UsageError(Exception):
    pass


class Refused(ConnectionError):
    """The broker refused the connection (CONNACK): the exit code is its code."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


def add_common(parser: argparse.ArgumentParser, default_version: str = "311") -> None:
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("-h", "--host", default=None, help="broker host (default: localhost)")
    parser.add_argument("-p", "--port", type=int, default=None,
                        help="broker port (default: 1883, 8883 with TLS)")
    parser.add_argument("--unix", default=None, metavar="PATH",
                        help="connect through this unix socket instead of TCP")
    parser.add_argument("-L", "--url", default=None,
                        help="mqtt(s)://[user[:password]@]host[:port]/topic, or ws(s)://")
    parser.add_argument("-i", "--id", default="", help="client id (default: assigned)")
    parser.add_argument("-k", "--keepalive", type=int, default=60, help="keepalive seconds")
    parser.add_argument("-q", "--qos", type=int, default=0, help="quality of service 0, 1 or 2")
    parser.add_argument("-u", "--username", help="user name")
    parser.add_argument("-P", "--pw", help="password")
    parser.add_argument("-V", "--protocol-version", default=default_version,
                        help=f"MQTT version: 311 or 5 (default: {default_version})")
    parser.add_argument("-c", "--disable-clean-session", action="store_true",
                        help="keep the session after disconnecting (needs -i)")
    parser.add_argument("-x", "--session-expiry-interval", default=None, metavar="SECONDS",
                        help="MQTT 5 session expiry (-1: never; default -1 with -c, else 0)")
    parser.add_argument("-D", "--property", action="append", nargs="+", metavar="ARG",
                        help="MQTT 5 property: COMMAND IDENTIFIER VALUE (may repeat)")
    parser.add_argument("-d", "--debug", action="store_true", help="print debug messages")
    parser.add_argument("--quiet", action="store_true", help="print no error messages")
    parser.add_argument("--will-topic", help="topic of the will message")
    parser.add_argument("--will-payload", default="", help="payload of the will message")
    parser.add_argument("--will-qos", type=int, default=0, help="QoS of the will message")
    parser.add_argument("--will-retain", action="store_true", help="retain the will message")
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--cafile", help="trusted CA certificates (turns TLS on)")
    tls.add_argument("--capath", help="a directory of trusted CA certificates (turns TLS on)")
    tls.add_argument("--tls-use-os-certs", action="store_true",
                     help="trust the system's CA certificates (turns TLS on)")
    tls.add_argument("--cert", help="client certificate, if the broker asks for one")
    tls.add_argument("--key", help="the client certificate's private key")
    tls.add_argument("--insecure", action="store_true",
                     help="do not check the broker certificate's host name")
    tls.add_argument("--tls-version", choices=sorted(_TLS_VERSIONS),
                     help="the lowest TLS version (default: tlsv1.2)")
    tls.add_argument("--ciphers", help="OpenSSL cipher list")


def _apply_url(args: argparse.Namespace) -> tuple[str, bool]:
    """``-L``: host, port, credentials and topic from the URL; (transport, tls)."""
    if args.url is None:
        return ("unix" if args.unix else "tcp"), False
    parts = urlsplit(args.url)
    scheme = _URL_SCHEMES.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise UsageError(f"Unsupported URL scheme or no host: {args.url} (use mqtt, mqtts, "
                         f"ws or wss)")
    transport, tls, port = scheme
    args.host = parts.hostname
    args.port = parts.port or port
    if parts.username:
        args.username, args.pw = unquote(parts.username), unquote(parts.password or "") or None
    topic = unquote(parts.path.lstrip("/"))
    if topic:
        if isinstance(args.topic, list):
            args.topic.append(topic)
        elif args.topic is None:
            args.topic = topic
    return transport, tls


def _tls_context(args: argparse.Namespace, forced: bool) -> ssl.SSLContext | None:
    if not (forced or args.cafile or args.capath or args.tls_use_os_certs or args.cert):
        return None
    try:
        context = ssl.create_default_context(cafile=args.cafile, capath=args.capath)
        if args.cert:
            context.load_cert_chain(args.cert, args.key)
        if args.ciphers:
            context.set_ciphers(args.ciphers)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"Problem setting TLS options: {getattr(exc, 'strerror', None) or exc}"
                         ) from None
    context.minimum_version = _TLS_VERSIONS[args.tls_version or "tlsv1.2"]
    if args.insecure:
        context.check_hostname = False  # the certificate is still verified
    return context


def make_client(args: argparse.Namespace, prefix: str = "mqlite") -> mqtt.Client:
    if args.qos not in (0, 1, 2):
        raise UsageError(f"Invalid QoS given: {args.qos}")
    version = _VERSIONS.get(str(args.protocol_version).lower())
    if version is None:
        raise UsageError(f"Invalid protocol version {args.protocol_version!r}: use 311 or 5")
    if args.disable_clean_session and not args.id:
        raise UsageError("You must provide a client id if you are using the -c option.")
    transport, url_tls = _apply_url(args)
    try:
        args.properties = parse(args.property)
    except PropertyError as exc:
        raise UsageError(str(exc)) from None
    if (args.properties or args.session_expiry_interval is not None) and version != mqtt.MQTTv5:
        raise UsageError("-D and -x are only valid with MQTT v5 (-V 5)")
    args.session_expiry = _session_expiry(args)
    context = _tls_context(args, url_tls)
    args.host = args.host or "localhost"
    if args.port is None:
        args.port = 8883 if context is not None else 1883
    kwargs: dict[str, Any] = {"protocol": version, "transport": transport,
                              "reconnect_on_failure": False}
    if version != mqtt.MQTTv5:
        kwargs["clean_session"] = not args.disable_clean_session
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, args.id, **kwargs)
    if context is not None:
        client.tls_set_context(context)
    if args.username is not None:
        client.username_pw_set(args.username, args.pw)
    if args.will_topic:
        client.will_set(args.will_topic, args.will_payload, args.will_qos, args.will_retain,
                        args.properties.get("will"))
    if args.debug:
        client.on_log = lambda c, userdata, level, text: _debug(c, text)
    return client


def _debug(client: mqtt.Client, text: str) -> None:
    """mosquitto's form: "Client ID sending CONNECT"."""
    print(f"Client {client.client_id or '(null)'} {text[:1].lower()}{text[1:]}", flush=True)


def _session_expiry(args: argparse.Namespace) -> int | None:
    given = args.session_expiry_interval
    if given is None:
        return NEVER_EXPIRES if args.disable_clean_session else None
    if given in ("-1", "∞"):
        return NEVER_EXPIRES
    try:
        value = int(given)
    except ValueError:
        raise UsageError(f"Invalid session expiry interval {given!r}") from None
    if not 0 <= value <= NEVER_EXPIRES:
        raise UsageError(f"Invalid session expiry interval {given!r}")
    return value


def connect(client: mqtt.Client, args: argparse.Namespace, timeout: float = 10.0) -> None:
    """Connect and wait for CONNACK; Refused with the CONNACK's code, ConnectionError if the
    connection is cut off, OSError if the broker cannot be reached."""
    refused: list[Any] = []
    client.on_connect = lambda c, u, f, rc, p: refused.append(rc) if rc.is_failure else None
    host, port = (args.unix, 0) if args.unix else (args.host, args.port)
    if client.protocol == mqtt.MQTTv5:
        properties = args.properties.get("connect")
        if args.session_expiry:
            properties = properties or mqtt.Properties(mqtt.PacketTypes.CONNECT)
            properties.SessionExpiryInterval = args.session_expiry
        client.connect(host, port, args.keepalive, clean_start=not args.disable_clean_session,
                       properties=properties)
    else:
        client.connect(host, port, args.keepalive)
    deadline = time.monotonic() + timeout
    while not client.is_connected():
        if refused:
            code = int(refused[0].value)
            if client.protocol != mqtt.MQTTv5:
                v3 = _V3_CODES.get(code, code)
                raise Refused(v3, mqtt.connack_string(v3))
            raise Refused(code, str(refused[0]))
        if client.socket() is None:
            raise ConnectionError("Connection lost")
        if time.monotonic() > deadline:
            raise ConnectionError("Timed out waiting for CONNACK")
        client.loop(0.1)


def fail(text: str, code: int = 1, quiet: bool = False) -> int:
    if not quiet:
        print(f"Error: {text}", file=sys.stderr)
    return code


def connected_client(args: argparse.Namespace, command: str,
                     on_message: Any = None) -> mqtt.Client | int:
    """A connected client for ``mqlite pub``/``sub``/``rr``, or the exit code after saying why
    not (mosquitto's: the CONNACK's code for a refusal)."""
    try:
        client = make_client(args)
        client.on_message = on_message
        connect(client, args)
    except UsageError as exc:
        return fail(f"{exc}\n\nUse 'mqlite {command} --help' to see usage.", quiet=args.quiet)
    except Refused as exc:
        if not args.quiet:
            print(f"Connection error: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:  # ConnectionError among them
        return fail(exc.strerror or str(exc), quiet=args.quiet)
    return client
