"""``mqlite help config``: every setting of mqlite.toml and flag of ``mqlite broker``, with its
default and range, from the same source as the documentation and the man pages."""

from __future__ import annotations

import argparse

from . import settings_reference

TOPICS = {"config": settings_reference.text}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("help", help="reference pages in the terminal",
                                 description="Show a reference page: config (every setting).")
    parser.add_argument("topic", choices=sorted(TOPICS), help="what to show")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(TOPICS[args.topic](), end="")
    return 0
