"""The build that runs is the build that was made: compiled by mypyc unless the install asked
for pure Python or could not compile, and never silently the other one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mqlite.cli import build_info


def test_the_build_imported_is_the_build_installed() -> None:
    recorded = build_info.recorded()
    assert build_info.running() == recorded.kind, (
        f"the install built {recorded.kind} ({recorded.reason or 'compiled'}) but "
        f"{build_info.running()} modules are imported: a stale or shadowing install")


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI builds the compiled package")
def test_ci_tests_the_compiled_build() -> None:
    """CI's machine has a C compiler: the suite must run against the compiled modules unless
    the pure build was asked for."""
    if os.environ.get("MQLITE_PURE_PYTHON", "") not in ("", "0"):
        assert build_info.running() == "pure"
    else:
        assert build_info.running() == "compiled", build_info.recorded().reason


def test_version_says_which_build_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "mqlite.cli", "--version"],
                            capture_output=True, text=True, timeout=30, check=True)
    expected = "compiled with mypyc" if build_info.running() == "compiled" else "pure Python"
    assert expected in result.stdout
