"""``mqlite broker``: run the broker daemon in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from mqlite.broker import Broker, BrokerConfig, StoreError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = BrokerConfig()
    parser = commands.add_parser("broker", help="run the MQTT broker",
                                 description="Run the MQTT 3.1.1/5.0 broker in the foreground.")
    parser.add_argument("--host", default=defaults.host,
                        help="address to listen on; 0.0.0.0 or :: for all (default: %(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port,
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
    parser.add_argument("--max-packet-size", type=int, default=defaults.max_packet_size,
                        help="largest packet a client may send, in bytes (default: %(default)s)")
    parser.add_argument("--connect-timeout", type=float, default=defaults.connect_timeout,
                        help="seconds a new connection has to send CONNECT "
                             "(default: %(default)s)")
    parser.add_argument("--max-keepalive", type=int, default=None,
                        help="largest keep alive a client may ask for, in seconds")
    parser.add_argument("--max-inflight", type=int, default=defaults.max_inflight,
                        help="QoS 1/2 messages in flight per client (default: %(default)s)")
    parser.add_argument("--max-queued-messages", type=int,
                        default=defaults.max_queued_messages,
                        help="messages queued per session (default: %(default)s)")
    parser.add_argument("--max-queued-bytes", type=int, default=defaults.max_queued_bytes,
                        help="payload bytes queued per session (default: %(default)s)")
    parser.add_argument("--queue-overflow", choices=["drop-oldest", "drop-newest"],
                        default=defaults.queue_overflow,
                        help="which message a full queue drops (default: %(default)s)")
    parser.add_argument("--session-expiry", type=int, default=None,
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
        logging.getLogger("mqlite.broker").error("%s", exc)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("mqlite.broker").info("%s received: stopping",
                                                signal.Signals(signum).name)
        broker.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        broker.serve_forever()
    except OSError as exc:
        logging.getLogger("mqlite.broker").error("cannot listen on %s:%s: %s", args.host,
                                                 args.port, exc.strerror or exc)
        return 1
    return 0
