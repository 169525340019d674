"""``-c FILE`` for the commands that talk to a broker or read its database (``mqlite
sessions``, ``mqlite clients``): the broker's own configuration file gives their defaults (the
database, the cluster's Redis, the http listener and the admin token), so an operator does
not repeat them. Flags still win."""

from __future__ import annotations

import argparse

from mqlite.broker.config.config_file import ConfigError, load

DEFAULT_DB = "mqlite.db"


def add_flag(parser: argparse.ArgumentParser, sub: bool = False) -> None:
    """``sub``: on an action's parser, where a default would hide the command's own -c."""
    parser.add_argument("-c", "--config", metavar="FILE",
                        default=argparse.SUPPRESS if sub else None,
                        help="the broker's configuration file (TOML or mosquitto.conf): its "
                             "database, cluster, http listener and admin token")


def apply(args: argparse.Namespace) -> None:
    """Fill the flags not given from ``args.config``; ConfigError (one line) if it cannot
    be read."""
    values: dict[str, object] = {}
    cluster: dict[str, object] = {}
    if getattr(args, "config", None):
        settings = load(args.config)
        values, cluster = settings.values, settings.cluster or {}
    if hasattr(args, "db") and args.db is None:
        args.db = str(values.get("db") or DEFAULT_DB)
    if hasattr(args, "cluster") and args.cluster is None and cluster.get("url"):
        args.cluster = str(cluster["url"])
    if hasattr(args, "http") and not args.http and values.get("http"):
        args.http = str(values["http"])
    token = values.get("admin_token")
    args.config_admin_token = str(token) if token else None


__all__ = ["ConfigError", "add_flag", "apply"]
