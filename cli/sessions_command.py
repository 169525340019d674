"""``mqlite sessions``: what a broker's database holds, read-only (safe while it runs), or
with ``--cluster URL`` what a cluster keeps in Redis; and ``mqlite sessions delete``, through a
running broker's admin API (``--http``) or, with the broker stopped, in the database file
itself."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mqlite.broker import SQLiteStore, StoreError, read_session, read_sessions
from mqlite.broker.cluster.config import ClusterConfigError, parse_redis_url
from mqlite.broker.engine.journal import SessionDeleted
from mqlite.broker.engine.session_summary import ClusterSessionSummary
from mqlite.broker.storage.sqlite_inspect import broker_running

from . import admin_client, config_defaults

if TYPE_CHECKING:
    from mqlite.broker.cluster.inspect import SessionReader


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "sessions", help="list the persistent sessions in a broker's database",
        description="List the persistent sessions in a broker's database (read-only; works "
                    "while the broker runs).")
    parser.add_argument("--db", default=None,
                        help="the database (default: the -c file's, or mqlite.db)")
    parser.add_argument("--cluster", metavar="URL",
                        help="read a cluster's sessions in its Redis instead (redis://, "
                             "rediss://, unix://)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    config_defaults.add_flag(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="one session's subscriptions and queue")
    show.add_argument("client_id")
    show.add_argument("--db", default=argparse.SUPPRESS, help="the database")
    show.add_argument("--cluster", metavar="URL", help="read it in a cluster's Redis")
    show.add_argument("--json", action="store_true", help="print JSON")
    config_defaults.add_flag(show, sub=True)
    delete = actions.add_parser(
        "delete", help="delete a session: through a running broker (--http), or in a "
                       "stopped broker's database")
    delete.add_argument("client_id")
    delete.add_argument("--db", default=argparse.SUPPRESS, help="the database")
    admin_client.add_flags(delete)
    config_defaults.add_flag(delete, sub=True)
    parser.set_defaults(run=run)


def _age(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "-"
    seconds = max(0, int(now - timestamp))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(timestamp: float | None) -> str:
    return "-" if timestamp is None else datetime.fromtimestamp(timestamp).isoformat(
        sep=" ", timespec="seconds")


def run(args: argparse.Namespace) -> int:
    try:
        config_defaults.apply(args)
    except config_defaults.ConfigError as exc:
        print(f"mqlite sessions: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "show":
            return _show(args)
        if args.action == "delete":
            return _delete(args)
        sessions = _cluster_reader(args.cluster).all() if args.cluster else \
            read_sessions(args.db)
    except (StoreError, admin_client.AdminError, ClusterConfigError) as exc:
        print(f"mqlite sessions: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([asdict(s) for s in sessions], indent=2))
        return 0
    now = time.time()
    if args.cluster:
        rows: list[tuple[str, ...]] = [("CLIENT ID", "NODE", "ONLINE", "MQTT", "SUBS",
                                        "QUEUED", "LAST SEEN", "EXPIRES IN")]
        rows += [(s.client_id, s.node, "yes" if s.online else "no",
                  _version(s.protocol_version), str(s.subscriptions), str(s.queued),
                  _when(s.last_seen), "-" if s.expires_in is None else
                  _age(now - s.expires_in, now)) for s in sessions
                 if isinstance(s, ClusterSessionSummary)]
        _print_table(rows)
        print(f"{len(sessions)} session(s)")
        return 0
    rows = [("CLIENT ID", "ONLINE", "MQTT", "SUBS", "QUEUED", "OLDEST", "LAST SEEN")]
    rows += [(s.client_id, "yes" if s.online else "no", _version(s.protocol_version),
              str(s.subscriptions), str(s.queued), _age(s.oldest_queued_at, now),
              _when(s.last_seen)) for s in sessions]
    _print_table(rows)
    print(f"{len(sessions)} session(s)")
    return 0


def _version(level: int) -> str:
    return "5.0" if level == 5 else "3.1.1"


def _cluster_reader(url: str) -> SessionReader:
    try:
        from mqlite.broker.cluster.inspect import SessionReader
    except ImportError:
        raise StoreError("reading a cluster's sessions needs hiredis: pip install "
                         "'mqlite[cluster]'") from None
    return SessionReader.connect(parse_redis_url(url))


def _show(args: argparse.Namespace) -> int:
    found = _cluster_reader(args.cluster).one(args.client_id) if args.cluster else \
        read_session(args.db, args.client_id)
    if found is None:
        where = "the cluster's Redis" if args.cluster else args.db
        print(f"mqlite sessions: no session {args.client_id!r} in {where}", file=sys.stderr)
        return 1
    summary, subscriptions, queue = found
    if args.json:
        print(json.dumps({**asdict(summary), "subscription_list": subscriptions,
                          "queue": queue}, indent=2))
        return 0
    node = f", on node {summary.node}" if isinstance(summary, ClusterSessionSummary) else ""
    print(f"{summary.client_id}: {'online' if summary.online else 'offline'}{node}, MQTT "
          f"{_version(summary.protocol_version)}, last seen {_when(summary.last_seen)}")
    print(f"\nsubscriptions ({len(subscriptions)}):")
    _print_table([("FILTER", "QOS", "NO LOCAL", "RAP", "RETAIN HANDLING", "ID")] + [
        (s["topic_filter"], str(s["qos"]), str(bool(s["no_local"])),
         str(bool(s["retain_as_published"])), str(s["retain_handling"]),
         str(s["identifier"] or "-")) for s in subscriptions])
    states = {0: "queued", 1: "awaiting PUBACK", 2: "awaiting PUBREC", 3: "awaiting PUBCOMP"}
    print(f"\nqueue ({len(queue)}):")
    now = time.time()
    _print_table([("SEQ", "TOPIC", "QOS", "STATE", "BYTES", "AGE")] + [
        (str(q["seq"]), q["topic"], str(q["qos"]), states.get(q["state"], str(q["state"])),
         str(q["bytes"]), _age(q["created_at"], now)) for q in queue])
    return 0


def _delete(args: argparse.Namespace) -> int:
    if args.http:
        admin_client.call(args, "DELETE", f"/api/v1/sessions/{admin_client.quote(args.client_id)}")
        print(f"deleted session {args.client_id}")
        return 0
    if getattr(args, "cluster", None):
        raise StoreError("in a cluster a session is deleted by the node that owns it: "
                         "through its admin API, with --http")
    if broker_running(args.db):
        raise StoreError(f"{args.db} is held by a running broker: delete through it with "
                         "--http")
    if read_session(args.db, args.client_id) is None:
        raise StoreError(f"no session {args.client_id!r} in {args.db}")
    store = SQLiteStore(args.db)  # takes the broker's lock: no broker can start meanwhile
    try:
        store.load()
        store.apply([SessionDeleted(args.client_id, True)])
    finally:
        store.close()
    print(f"deleted session {args.client_id} from {args.db}")
    return 0


def _print_table(rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
