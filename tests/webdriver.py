"""A headless Chromium driven through chromedriver's W3C WebDriver protocol (JSON over HTTP),
for the browser tests: the few commands they use, with no client library to install."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the protocol's key for an element reference
# Errors that mean "not yet": the page is still rendering, or re-rendered under our feet.
TRANSIENT = ("no such element", "stale element reference", "no such alert")
T = TypeVar("T")


class WebDriverError(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


class Element:
    def __init__(self, browser: Browser, reference: str) -> None:
        self._browser = browser
        self._path = f"/element/{reference}"

    @property
    def text(self) -> str:
        return str(self._browser.command("GET", self._path + "/text"))

    def attribute(self, name: str) -> str | None:
        value = self._browser.command("GET", f"{self._path}/attribute/{name}")
        return None if value is None else str(value)

    def displayed(self) -> bool:
        return bool(self._browser.command("GET", self._path + "/displayed"))

    def click(self) -> None:
        self._browser.command("POST", self._path + "/click", {})

    def send_keys(self, text: str) -> None:
        self._browser.command("POST", self._path + "/value", {"text": text})

    def find(self, css: str) -> Element:
        found = self._browser.command("POST", self._path + "/element",
                                      {"using": "css selector", "value": css})
        return Element(self._browser, found[ELEMENT])


class Browser:
    """chromedriver on a port of its own, and one session of headless Chromium."""

    def __init__(self, chromium: str, chromedriver: str, profile: Path,
                 size: str = "1280,1000") -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._driver = subprocess.Popen([chromedriver, f"--port={port}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._base = f"http://127.0.0.1:{port}"
        self._session = ""
        wait_until(self._ready, 30, "chromedriver to start")
        arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={size}",
                     "--hide-scrollbars", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}"]
        created = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": arguments}}}})
        self._session = f"/session/{created['sessionId']}"

    def _ready(self) -> bool:
        try:
            return bool(self._call("GET", "/status")["ready"])
        except OSError:
            return False

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            value = json.loads(exc.read() or b"{}").get("value", {})
            raise WebDriverError(value.get("error", str(exc.code)),
                                 value.get("message", "")) from None

    def command(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, self._session + path, body)

    def get(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def find(self, css: str) -> Element:
        found = self.command("POST", "/element", {"using": "css selector", "value": css})
        return Element(self, found[ELEMENT])

    def find_all(self, css: str) -> list[Element]:
        found = self.command("POST", "/elements", {"using": "css selector", "value": css})
        return [Element(self, item[ELEMENT]) for item in found]

    def execute(self, script: str) -> Any:
        """Run ``script`` (a function body: ``return ...``) in the page; its result."""
        return self.command("POST", "/execute/sync", {"script": script, "args": []})

    def screenshot(self, path: Path) -> None:
        """The window as a PNG file."""
        path.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))

    def accept_alert(self) -> None:
        self.command("POST", "/alert/accept", {})

    def quit(self) -> None:
        try:
            if self._session:
                self._call("DELETE", self._session)
        finally:
            self._driver.terminate()
            self._driver.wait(30)


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    """``condition()``'s first true value, trying again while it is false or the page is not
    there yet (a transient WebDriver error); AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
            if result:
                return result
        except WebDriverError as exc:
            if exc.error not in TRANSIENT:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a browser's page: it offers nothing to wait on
