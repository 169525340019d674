"""A real mosquitto broker (Debian's package) for the interoperability tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

TIMEOUT = 10.0


def require_mosquitto() -> None:
    """Skip the calling test module without mosquitto, except in CI, which must have it."""
    if not shutil.which("mosquitto"):
        if os.environ.get("CI"):
            raise RuntimeError("CI needs the mosquitto broker installed (see .ci/run)")
        pytest.skip("mosquitto is not installed", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_mosquitto(directory: Path, extra_config: str = "",
                    port: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    """mosquitto on ``port`` (0: a free one), once it accepts connections."""
    port = port or free_port()
    config = directory / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{extra_config}")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_listening(port, process)
    return process, port


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until ``process`` (a broker) accepts connections on ``port``."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, "the broker exited"
            assert time.monotonic() < deadline, "the broker did not start listening"
            time.sleep(0.05)  # polling for a process's listening socket; nothing to wait on
