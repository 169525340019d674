"""The build that runs is the build that was made: compiled by mypyc unless the install asked
for pure Python or could not compile, and never silently the other one."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from mqlite.cli import build_info

from .test_packaging import build_wheel, environment, run


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


@pytest.mark.slow
def test_a_build_without_a_c_compiler_is_pure_and_the_broker_says_so(
        tmp_path: Path) -> None:
    """No working C compiler (CC=false): the wheel still builds, pure Python; the version
    says why, and the broker's log says once at start that it runs the slower build."""
    # MQLITE_PURE_PYTHON empty: this build tries to compile, also in CI's pure run.
    wheel = build_wheel(tmp_path, CC="false", MQLITE_PURE_PYTHON="")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".so")]
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path)
    version = run([python, "-m", "mqlite.cli", "--version"], cwd=tmp_path)
    assert "pure Python (the C extensions did not build" in version
    broker = subprocess.Popen([python, "-m", "mqlite.cli", "broker", "--port", "0", "--db",
                               ":memory:"], env=environment(), cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    try:
        assert broker.stdout is not None
        while not lines or "listening on 127.0.0.1:" not in lines[-1]:
            line = broker.stdout.readline()
            assert line, f"the broker exited: {lines}"
            lines.append(line)
    finally:
        broker.terminate()
        broker.communicate(timeout=30)
    warnings = [line for line in lines if "running the pure-Python build" in line]
    assert len(warnings) == 1 and "about half as fast" in warnings[0], lines


def test_the_fallback_warning_is_only_for_a_failed_compile() -> None:
    failed = build_info.Build("pure", "the C extensions did not build (CompileError: x)", True)
    assert build_info.fallback_warning(failed, "pure") is not None
    assert build_info.fallback_warning(failed._replace(failed=False), "pure") is None
    assert build_info.fallback_warning(build_info.Build("compiled", None), "compiled") is None
