"""Once in a real browser: headless Chromium loads a page that connects to mqlite's WebSocket
listener with MQTT.js, subscribes, and publishes back what it received (tests/js/browser.html).
The test waits for that reply, so it depends on no page-load timing."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path

import pytest

from mqlite.broker import Broker
from mqlite.broker.config.listener_config import ListenerConfig

from ..broker.helpers import PahoClient
from ..browsers import require_chromium
from ..js_peers import JS, require_mqttjs

pytestmark = pytest.mark.slow


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """The page and the MQTT.js bundle are all it serves: no request log."""


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
        url = (f"http://127.0.0.1:{server.server_address[1]}/browser.html"
               f"?port={broker.addresses['ws'][1]}")
        browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                    f"--user-data-dir={tmp_path}", url],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # The page publishes back what it received: both directions, one event to await.
            reply = listener.message(timeout=30)
        finally:
            browser.terminate()
            browser.wait(30)
            server.shutdown()
        assert reply.payload == b"the browser got: retained for the browser"
        listener.stop()
