"""``mqlite clients``: the clients connected to a running broker, from its admin API."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from . import admin_client, config_defaults


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "clients", help="list the clients connected to a running broker (its admin API)",
        description="List the clients connected to a running broker, through the admin API "
                    "of its http listener.")
    admin_client.add_flags(parser)
    config_defaults.add_flag(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    disconnect = actions.add_parser("disconnect", help="disconnect a client (MQTT 5: 0x98)")
    disconnect.add_argument("client_id")
    admin_client.add_flags(disconnect)
    config_defaults.add_flag(disconnect, sub=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config_defaults.apply(args)
    except config_defaults.ConfigError as exc:
        print(f"mqlite clients: {exc}", file=sys.stderr)
        return 1
    if not args.http:
        print("mqlite clients: needs --http (or -c with the broker's configuration file): "
              "connected clients are known only to the running broker", file=sys.stderr)
        return 1
    try:
        if args.action == "disconnect":
            admin_client.call(args, "POST", f"/api/v1/clients/"
                                            f"{admin_client.quote(args.client_id)}/disconnect")
            print(f"disconnected {args.client_id}")
            return 0
        clients = _all(args)
    except admin_client.AdminError as exc:
        print(f"mqlite clients: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(clients, indent=2))
        return 0
    rows = [("CLIENT ID", "LISTENER", "PEER", "MQTT", "USER", "IN FLIGHT", "QUEUED", "SINCE")]
    rows += [(c["id"], c["listener"], c["peer"], c["protocol"], c["username"] or "-",
              str(c["inflight"]), str(c["queued"]), _when(c["connected_since"]))
             for c in clients]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    print(f"{len(clients)} client(s)")
    return 0


def _all(args: argparse.Namespace) -> list[dict[str, Any]]:
    clients: list[dict[str, Any]] = []
    after = None
    while True:
        query = "?limit=1000" + (f"&after={admin_client.quote(after)}" if after else "")
        page = admin_client.call(args, "GET", "/api/v1/clients" + query)
        clients += page["clients"]
        after = page["next"]
        if after is None:
            return clients


def _when(timestamp: float | None) -> str:
    return "-" if timestamp is None else datetime.fromtimestamp(timestamp).isoformat(
        sep=" ", timespec="seconds")
