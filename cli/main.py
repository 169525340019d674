"""Entry point of the ``mqlite`` command and its subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import NoReturn, cast

from mqlite.cli import (
    broker_command,
    build_info,
    clients_command,
    help_command,
    passwd_command,
    pub_command,
    rr_command,
    sessions_command,
    sub_command,
)


class _Parser(argparse.ArgumentParser):
    """A bad flag or value is one line naming it, and exit code 1 (not argparse's usage
    text and 2). Subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mqlite",
        description="MQTT 3.1.1/5.0 broker and client with sessions persisted in SQLite.",
    )
    parser.add_argument("--version", action="version",
                        version=f"mqlite {version('mqlite')}, {build_info.describe()}")
    # Typed as argparse's own class, which the subcommand modules take; the parsers are ours.
    commands = cast("argparse._SubParsersAction[argparse.ArgumentParser]",
                    parser.add_subparsers(dest="command", metavar="COMMAND"))
    broker_command.add_parser(commands)
    sessions_command.add_parser(commands)
    clients_command.add_parser(commands)
    passwd_command.add_parser(commands)
    pub_command.add_parser(commands)
    sub_command.add_parser(commands)
    rr_command.add_parser(commands)
    help_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # (--workers passes it on)
    if args.command is None:
        parser.print_help()
        return 2
    result: int = args.run(args)
    return result
