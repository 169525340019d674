"""paho-mqtt's own client test suite, unchanged, against mqlite.client (tests/interop/
paho_suite.py): every test passes but those of paho's private internals and the deliberate
differences that the suite runner lists with their reasons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .paho_suite import CACHE, PAHO_VERSION

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _have_sources() -> None:
    """The suite comes from PyPI (paho-mqtt's source distribution), once."""
    if (CACHE / f"paho_mqtt-{PAHO_VERSION}.tar.gz").exists():
        return
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--no-binary", ":all:", "--dest", str(CACHE),
                           f"paho-mqtt=={PAHO_VERSION}"], capture_output=True, text=True,
                          timeout=300)
    if done.returncode and not os.environ.get("CI"):
        pytest.skip(f"paho-mqtt's sources are not reachable: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr


def test_paho_mqtts_client_suite_passes_against_mqlite_client() -> None:
    _have_sources()
    done = subprocess.run([sys.executable, "-m", "tests.interop.paho_suite"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    summary = [line for line in done.stdout.splitlines() if "client tests against" in line
               or "unexpected failure" in line]
    assert done.returncode == 0, "\n".join(summary) or done.stdout[-3000:]
    assert summary and " passed, " in summary[0]
