"""Once in a real browser: headless Chromium loads a page that connects to mqlite's WebSocket
listener with MQTT.js, subscribes and publishes (tests/js/browser.html)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from mqlite.broker import Broker
from mqlite.broker.listener_config import ListenerConfig

from ..broker.helpers import PahoClient
from ..js_peers import JS, require_mqttjs


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """The page and the MQTT.js bundle are all it serves: no request log."""


def require_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        raise AssertionError("CI installs chromium (see .ci/run)")
    pytest.skip("chromium is not installed")


def test_mqttjs_in_headless_chromium(tmp_path: Path) -> None:
    chromium = require_chromium()
    require_mqttjs()
    listeners = [ListenerConfig(type="ws", port=0, path="/mqtt", name="ws"),
                 ListenerConfig(port=0, name="tcp")]
    with Broker(listeners=listeners, sys_interval=0) as broker:
        listener = PahoClient(broker.addresses["tcp"], client_id="watcher")
        listener.connect()
        listener.subscribe("browser/out", qos=1)
        # Retained, so the page gets it whenever its subscription lands.
        listener.publish("browser/in", b"retained for the browser", qos=1, retain=True)
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(JS)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = (f"http://127.0.0.1:{server.server_address[1]}/browser.html"
                   f"?port={broker.addresses['ws'][1]}")
            # --virtual-time-budget: the DOM is dumped once the page's network and timers
            # have settled (or 20 s of page time have passed).
            done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                   f"--user-data-dir={tmp_path}", "--virtual-time-budget=20000",
                                   "--dump-dom", url], capture_output=True, text=True,
                                  timeout=60)
        finally:
            server.shutdown()
        assert '<p id="state">received</p>' in done.stdout, done.stdout[:2000]
        assert "browser/in: retained for the browser" in done.stdout
        assert listener.message().payload == b"hello from the browser"
        listener.stop()
