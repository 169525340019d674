"""Make docs/status-page.png: a broker with some clients, sessions and traffic, its status page
in headless Chromium (through Debian's chromedriver), after a minute of polling.

    .venv/bin/python scripts/status_page_screenshot.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from mqlite.broker import Broker
from mqlite.broker.config.listener_config import ListenerConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' WebDriver client
from tests.webdriver import Browser  # noqa: E402

OUT = ROOT / "docs" / "status-page.png"


def client(port: int, client_id: str, clean: bool = True) -> paho.Client:
    made = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id, clean_session=clean)
    made.connect("127.0.0.1", port)
    made.loop_start()
    return made


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    seconds = parser.parse_args().seconds
    listeners = [ListenerConfig(port=0, name="tcp"),
                 ListenerConfig(type="http", port=0, name="http")]
    with tempfile.TemporaryDirectory() as directory, Broker(
            listeners=listeners, db=f"{directory}/demo.db", sys_interval=0) as broker:
        port = broker.addresses["tcp"][1]
        sensors = [client(port, f"sensor-{n}") for n in range(4)]
        dashboard = client(port, "dashboard")
        dashboard.subscribe("sensors/#", 1)
        for n in range(3):
            offline = client(port, f"archiver-{n}", clean=False)
            offline.subscribe("sensors/#", 1)
            time.sleep(0.2)
            offline.disconnect()
            offline.loop_stop()
        stop = threading.Event()

        def publish() -> None:
            n = 0
            while not stop.wait(0.004):
                sensors[n % 4].publish(f"sensors/{n % 4}/temp", b"21.5", qos=n % 2)
                n += 1

        threading.Thread(target=publish, daemon=True).start()
        driver = Browser(shutil.which("chromium") or "chromium",
                         shutil.which("chromedriver") or "chromedriver",
                         Path(directory) / "profile", size="1280,1100")
        try:
            driver.get(f"http://127.0.0.1:{broker.addresses['http'][1]}/")
            time.sleep(seconds)  # a chart of the last minute: there is nothing to wait on
            OUT.parent.mkdir(exist_ok=True)
            driver.screenshot(OUT)
        finally:
            driver.quit()
            stop.set()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
