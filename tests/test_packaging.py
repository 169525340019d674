"""mqlite installs as a built wheel (compiled by mypyc) and as an editable install (the pure
build of the repository's files) into fresh virtual environments, and imports from the
repository root and from elsewhere, with both commands working and saying which build runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ("import importlib.metadata, mqlite.protocol, mqlite.broker, mqlite.client, mqlite.cli;"
         "print(mqlite.protocol.__file__);"
         "print(importlib.metadata.version('mqlite'))")


# What a copy of the tree to build from leaves out: VCS, venvs, build output, caches, and
# the Node and amqtt folders the tests and benchmarks install.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    "node_modules", ".aedes", ".amqtt-venv")


def environment(**overrides: str) -> dict[str, str]:
    """This process's environment without what points at its own venv, with ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **overrides}


def run(args: list[str], cwd: Path, **overrides: str) -> str:
    done = subprocess.run(args, cwd=cwd, env=environment(**overrides), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(folder: Path, **overrides: str) -> Path:
    """A wheel built from a copy of the tree in ``folder`` (setuptools writes build/ into the
    tree it builds), with ``overrides`` in the build's environment. The copy is not named
    mqlite: from ``folder`` it would shadow the installed package."""
    source = folder / "tree"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder / "dist"),
         str(source)], cwd=folder, **overrides)
    (found,) = (folder / "dist").glob("mqlite-*.whl")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("build"))


def _imports_everywhere(python: Path, command: Path, tmp_path: Path, build: str) -> str:
    """Where mqlite.protocol comes from, the same from the repository root and from
    elsewhere, with both ways of running the command working and naming ``build``."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    locations = set()
    for cwd in (ROOT, elsewhere):
        location, version = run([str(python), "-c", CHECK], cwd=cwd).split()
        locations.add(location)
        for way in ([str(command)], [str(python), "-m", "mqlite.cli"]):
            said = run([*way, "--version"], cwd=cwd).strip()
            assert said.startswith(f"mqlite {version}, {build}"), said
    (location,) = locations
    return location


def test_a_wheel_installs_and_imports_everywhere(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # As a user would: pip builds in isolation and installs the runtime dependencies.
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path)
    build = "pure Python" if os.environ.get("MQLITE_PURE_PYTHON") else "compiled with mypyc"
    location = _imports_everywhere(python, env_dir / "bin" / "mqlite", tmp_path, build)
    assert str(env_dir) in location, f"imported {location}, not the installed wheel"


def test_the_editable_install_is_the_pure_build_of_the_repository(tmp_path: Path) -> None:
    """``pip install -e`` (a contributor's edit-and-test loop) builds nothing: it imports the
    repository's own files, from anywhere, so that an edit is what runs."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)], cwd=tmp_path)
    location = _imports_everywhere(python, env_dir / "bin" / "mqlite", tmp_path, "pure Python")
    assert location == str(ROOT / "protocol" / "__init__.py")
    assert not list(ROOT.glob("protocol/*.so")), "compiled modules beside the sources"


def test_wheel_ships_typed_parts_and_no_tests(wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for part in ("protocol", "broker", "client", "cli"):
        assert f"mqlite/{part}/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "mqlite/tests"))]


def test_a_single_broker_runs_without_hiredis_and_cluster_mode_says_what_it_needs(
        tmp_path: Path) -> None:
    """hiredis is the cluster extra's: without it the broker, the client and the tools work,
    and cluster mode is one line saying what to install."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['hiredis'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    cli = [sys.executable, "-m", "mqlite.cli"]
    broker = subprocess.Popen([*cli, "broker", "--port", "0", "--db", ":memory:"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert broker.stdout is not None
        line = broker.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line
    finally:
        broker.terminate()
        broker.communicate(timeout=30)
    assert broker.returncode == 0
    cluster = subprocess.run([*cli, "broker", "--cluster", "redis://127.0.0.1:1/0"], env=env,
                             capture_output=True, text=True, timeout=30)
    assert cluster.returncode == 1
    assert cluster.stderr.strip().splitlines() == [
        "mqlite broker: cluster mode needs hiredis: pip install 'mqlite[cluster]'"]
    sessions = subprocess.run([*cli, "sessions", "--db", str(tmp_path / "none.db")], env=env,
                              capture_output=True, text=True, timeout=30)
    assert "hiredis" not in sessions.stderr and "Traceback" not in sessions.stderr
