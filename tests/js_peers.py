"""MQTT.js (npm's ``mqtt``, installed into tests/js by CI) run with Node, for the WebSocket
interoperability tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).with_name("js")


def require_mqttjs() -> str:
    """The node executable; the test is skipped without Node and MQTT.js, except in CI."""
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "mqtt").is_dir():
        if os.environ.get("CI"):
            raise AssertionError("CI installs Node and MQTT.js (npm install --prefix tests/js)")
        pytest.skip("needs node and `npm install --prefix tests/js`")
    return node


def start_mqttjs(url: str, topic_filter: str, count: int, topic: str = "",
                 payload: str = "") -> subprocess.Popen[str]:
    """An MQTT.js client: prints "ready" once subscribed, then each payload received; writes
    ``publish`` to its stdin to make it publish ``payload`` on ``topic``."""
    return subprocess.Popen([require_mqttjs(), str(JS / "mqttjs_client.mjs"), url, topic_filter,
                             str(count), topic, payload],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=JS)
