"""``mqlite broker``: run the broker daemon in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Callable
from types import FrameType

from mqlite.broker import Broker, BrokerConfig, StoreError
from mqlite.broker.config import LIMITS, describe_range

log = logging.getLogger("mqlite.broker")


def _in_range(setting: str, kind: type[int] | type[float] = int) -> Callable[[str], float]:
    """An argparse type: a number within the setting's range (broker/config.py LIMITS)."""
    low, high = LIMITS[setting]

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {describe_range(low, high)}, "
                                             f"not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {describe_range(low, high)}, not {text}")
        return value

    return parse


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = BrokerConfig()
    parser = commands.add_parser("broker", help="run the MQTT broker",
                                 description="Run the MQTT 3.1.1/5.0 broker in the foreground.")
    parser.add_argument("--host", default=defaults.host,
                        help="address to listen on; 0.0.0.0 or :: for all (default: %(default)s)")
    parser.add_argument("--port", type=_in_range("port"), default=defaults.port,
                        help="TCP port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--db", default="mqlite.db",
                        help="SQLite file for persistent sessions and retained messages, "
                             "created 0600; ':memory:' keeps nothing (default: %(default)s)")
    parser.add_argument("--sync", choices=["full", "normal"], default="full",
                        help="full: an acknowledged message survives power loss; normal: it "
                             "survives a process crash, and is faster (default: %(default)s)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="logging level (default: %(default)s)")
    parser.add_argument("--max-packet-size", type=_in_range("max_packet_size"),
                        default=defaults.max_packet_size,
                        help="largest packet a client may send, in bytes (default: %(default)s)")
    parser.add_argument("--connect-timeout", type=_in_range("connect_timeout", float),
                        default=defaults.connect_timeout,
                        help="seconds a new connection has to send CONNECT "
                             "(default: %(default)s)")
    parser.add_argument("--max-keepalive", type=_in_range("max_keepalive"), default=None,
                        help="largest keep alive a client may ask for, in seconds")
    parser.add_argument("--max-inflight", type=_in_range("max_inflight"),
                        default=defaults.max_inflight,
                        help="QoS 1/2 messages in flight per client (default: %(default)s)")
    parser.add_argument("--max-queued-messages", type=_in_range("max_queued_messages"),
                        default=defaults.max_queued_messages,
                        help="messages queued per session (default: %(default)s)")
    parser.add_argument("--max-queued-bytes", type=_in_range("max_queued_bytes"),
                        default=defaults.max_queued_bytes,
                        help="payload bytes queued per session (default: %(default)s)")
    parser.add_argument("--queue-overflow", choices=["drop-oldest", "drop-newest"],
                        default=defaults.queue_overflow,
                        help="which message a full queue drops (default: %(default)s)")
    parser.add_argument("--session-expiry", type=_in_range("session_expiry"), default=None,
                        help="seconds an MQTT 3.1.1 persistent session outlives its "
                             "connection (default: never expires)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = BrokerConfig(host=args.host, port=args.port, max_packet_size=args.max_packet_size,
                          connect_timeout=args.connect_timeout,
                          max_keepalive=args.max_keepalive, max_inflight=args.max_inflight,
                          max_queued_messages=args.max_queued_messages,
                          max_queued_bytes=args.max_queued_bytes,
                          queue_overflow=args.queue_overflow,
                          session_expiry=args.session_expiry)
    try:
        broker = Broker(config=config, db=args.db, sync=args.sync)
    except StoreError as exc:
        log.error("%s", exc)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        broker.stop()

    def hang_up(signum: int, frame: FrameType | None) -> None:
        # A daemon's SIGHUP asks for a reload; by default it would end the process silently.
        log.info("SIGHUP received: there is no configuration to reload; carrying on")

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, hang_up)
    try:
        broker.serve_forever()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc.strerror or exc)
        return 1
    finally:
        # Stopped: a further signal while the interpreter exits must not turn exit code 0
        # into death by signal (Python restores the default handlers as it finalizes, but
        # leaves ignored signals ignored).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
    return 0
