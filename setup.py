"""mqlite's build: the protocol core and the broker's per-message modules are compiled with
mypyc into C extensions; their Python sources ship beside them as the fallback.

The pure-Python build, with one warning line, comes from MQLITE_PURE_PYTHON=1, an editable
install (compiled modules would hide a contributor's edits) or a machine that cannot compile
(no C compiler or Python headers). The build records what it made in
``mqlite/cli/build.json``; ``mqlite --version`` reports it. Everything else about the
package is in pyproject.toml.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# The folders that are mqlite's subpackages (pyproject.toml's package-dir).
PACKAGES = {"protocol": "mqlite/protocol", "broker": "mqlite/broker", "client": "mqlite/client",
            "cli": "mqlite/cli", "testing": "mqlite/testing"}
# What runs for every packet and message. Everything else (configuration, the cluster, the
# admin API, the client) stays interpreted: compiling it would cost build time for nothing.
COMPILED = [
    "protocol/decoder.py", "protocol/encoder.py", "protocol/errors.py", "protocol/framing.py",
    "protocol/packet_ids.py", "protocol/packet_types.py", "protocol/packets.py",
    "protocol/properties.py", "protocol/qos_flow.py", "protocol/reason_codes.py",
    "protocol/topic_trie.py", "protocol/topics.py", "protocol/wire.py",
    "broker/message.py", "broker/engine/connection.py", "broker/engine/negotiated.py",
    "broker/engine/routing.py", "broker/engine/delivery.py", "broker/engine/session.py",
    "broker/engine/subscriptions.py", "broker/engine/publish_encoding.py",
    "broker/engine/stats.py", "broker/engine/stored_queue.py", "broker/engine/journal.py",
    "broker/engine/handlers/acks.py", "broker/engine/handlers/publish.py",
    "broker/engine/core.py", "broker/engine/sessions.py", "broker/engine/timers.py",
    "broker/engine/deadlines.py", "broker/engine/retained.py", "broker/engine/serialize.py",
    "broker/engine/clock.py",
    "broker/engine/handlers/connect.py", "broker/engine/handlers/subscribe.py",
    "broker/net/loop.py", "broker/storage/sqlite_rows.py",
]
RECORD = ("mqlite", "cli", "build.json")
STAGE = ROOT / "build" / "mypyc-stage"


def _pure_reason() -> str | None:
    """Why this build is pure Python before trying to compile, or None to compile."""
    if os.environ.get("MQLITE_PURE_PYTHON", "") not in ("", "0"):
        return "MQLITE_PURE_PYTHON is set"
    if "editable_wheel" in sys.argv or "develop" in sys.argv:
        return "an editable install (compiled modules would hide edits to the sources)"
    if not any(command in sys.argv for command in ("bdist_wheel", "build", "build_ext",
                                                   "install")):
        return "metadata only"
    return None


def _stage() -> list[str]:
    """Copy the packages under ``build/mypyc-stage/mqlite/`` so that mypy, which cannot map
    the top-level folders to ``mqlite.*``, sees the package as it is installed. Returns the
    staged paths of the modules to compile."""
    shutil.rmtree(STAGE, ignore_errors=True)
    for folder, target in PACKAGES.items():
        shutil.copytree(ROOT / folder, STAGE / target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    # Type errors fail the build, but the build has none of the runtime dependencies: their
    # imports are Any here (the strict check with them installed is scripts/typecheck).
    (STAGE / "mypy.ini").write_text("[mypy]\nignore_missing_imports = True\n")
    return [str(STAGE / PACKAGES[path.split("/")[0]] / path.split("/", 1)[1])
            for path in COMPILED]


def _extensions() -> tuple[list[Any], str | None, bool]:
    """The C extensions; why the build is pure, if it is; whether that is a failure (the
    build meant to compile)."""
    reason = _pure_reason()
    if reason is not None:
        return [], reason, False
    try:
        from mypyc.build import mypycify
    except ImportError:
        return [], "mypy is not installed in the build environment", True
    paths = _stage()
    os.environ["MYPYPATH"] = str(STAGE)
    try:
        extensions = mypycify(
            ["--config-file", str(STAGE / "mypy.ini"), "--explicit-package-bases", *paths],
            opt_level="3", group_name="mqlite_native", target_dir=str(ROOT / "build" / "mypyc"))
    except SystemExit as error:  # mypy's type errors end in SystemExit
        return [], f"mypyc could not compile the sources ({error})", True
    return extensions, None, False


EXTENSIONS, PURE_REASON, COMPILE_FAILED = _extensions()


def _record(build_lib: str, kind: str, reason: str | None, failed: bool) -> None:
    """``failed``: pure because compiling failed, not because the pure build was wanted."""
    path = Path(build_lib).joinpath(*RECORD)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"build": kind, "reason": reason, "failed": failed}) + "\n")


class BuildPy(build_py):
    """Records the build that was asked for; BuildExt corrects it if compiling fails."""

    def run(self) -> None:
        if not self.editable_mode:  # an earlier build's extensions must not ship in this one
            for stale in Path(self.build_lib).glob("**/*.so"):
                stale.unlink()
        super().run()
        if not self.editable_mode:
            _record(self.build_lib, "pure" if EXTENSIONS == [] else "compiled", PURE_REASON,
                    failed=COMPILE_FAILED)
        if PURE_REASON not in (None, "metadata only"):
            print(f"mqlite: building pure Python: {PURE_REASON}", file=sys.stderr)


class BuildExt(build_ext):
    """Falls back to the pure build when the C compiler fails, with one warning line."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler, no headers: distutils' errors vary
            reason = f"the C extensions did not build ({type(error).__name__}: {error})"
            print(f"mqlite: building pure Python: {reason}", file=sys.stderr)
            for extension in self.extensions:  # none of a half-made set
                Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
            self.extensions = []
            _record(self.build_lib, "pure", reason, failed=True)


setup(ext_modules=EXTENSIONS, cmdclass={"build_py": BuildPy, "build_ext": BuildExt})
