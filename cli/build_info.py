"""Which build of mqlite runs: compiled by mypyc, or pure Python, and why.

setup.py records what it built in ``build.json`` beside this module; the modules actually
imported say what runs. The two differ only when something is wrong (a stale or shadowed
install), which ``tests/test_build.py`` catches.
"""

from __future__ import annotations

import json
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import NamedTuple

import mqlite.protocol.decoder

RECORD = Path(__file__).with_name("build.json")


class Build(NamedTuple):
    kind: str  # "compiled" or "pure"
    reason: str | None  # why pure, when it is
    failed: bool = False  # pure because compiling failed, not because pure was wanted


def recorded() -> Build:
    """What the install built (a source checkout or an editable install records nothing)."""
    try:
        record = json.loads(RECORD.read_text())
    except FileNotFoundError:
        return Build("pure", "no build record: an editable install or a source checkout")
    return Build(str(record["build"]), record.get("reason"), bool(record.get("failed")))


def running() -> str:
    """"compiled" when the protocol core imported is mypyc's C extension, else "pure"."""
    path = mqlite.protocol.decoder.__file__ or ""
    return "compiled" if path.endswith(tuple(EXTENSION_SUFFIXES)) else "pure"


def fallback_warning(build: Build, running_kind: str) -> str | None:
    """One line for the broker's log when it runs pure Python though the install meant to
    compile (pip shows no build output): the broker works, at about half the speed."""
    if running_kind != "pure" or not build.failed:
        return None
    return (f"running the pure-Python build, about half as fast: {build.reason}; install a C "
            "compiler and the Python headers, then reinstall mqlite")


def describe() -> str:
    """One line for ``mqlite --version``."""
    build = recorded()
    if running() == "compiled":
        return "compiled with mypyc"
    return f"pure Python ({build.reason})" if build.reason else "pure Python"
