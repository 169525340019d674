"""The status page in a real browser: headless Chromium, driven by Selenium through Debian's
chromedriver, loads the page from a broker under load, is given the admin token when the page
asks for it, shows the numbers the API gives, and deletes a session with its button."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mqlite.broker import Broker

from ..broker.helpers import PahoClient, RawClient
from ..browsers import require_chromedriver, require_chromium
from .http_helpers import get_json, http_address, start

TOKEN = "a-token-for-the-status-page"

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = require_chromium()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(require_chromedriver()), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Load:
    """A publisher sending QoS 0 messages to a subscriber until stopped."""

    def __init__(self, broker: Broker) -> None:
        self.subscriber = PahoClient(broker.addresses["tcp"], client_id="load-sub")
        self.subscriber.connect()
        self.subscriber.subscribe("load/#")
        self.publisher = PahoClient(broker.addresses["tcp"], client_id="load-pub")
        self.publisher.connect()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(0.002):  # a steady rate, not a flood
            self.publisher.client.publish("load/x", b"payload")

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)


def refreshed(driver: Any) -> int:
    from selenium.webdriver.common.by import By
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-refreshed") or 0)


def shown(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By
    return str(driver.find_element(By.ID, element_id).text)


def test_the_page_shows_what_the_api_says_and_acts(browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    broker = start(admin_token=TOKEN)
    load = Load(broker)
    try:
        away = RawClient(broker.addresses["tcp"])
        away.connect("gone-away", clean_start=False)
        away.close()
        retained = PahoClient(broker.addresses["tcp"], client_id="retainer")
        retained.connect()
        retained.publish("kept/a", b"1", qos=1, retain=True)
        port = http_address(broker)[1]
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 30)
        # The API says 401, so the page asks for the token: give it once.
        wait.until(lambda d: d.find_element(By.ID, "token-form").is_displayed())
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        wait.until(lambda d: refreshed(d) >= 2)  # two polls: the rates are shown too
        status, stats = get_json(broker, "/api/v1/stats", token=TOKEN)
        assert status == 200
        assert shown(browser, "clients-connected") == str(sum(stats["clients_connected"]
                                                              .values())) == "3"
        assert shown(browser, "sessions-online") == str(stats["sessions"]["online"])
        assert shown(browser, "sessions-offline") == str(stats["sessions"]["offline"]) == "1"
        assert shown(browser, "subscriptions") == str(stats["subscriptions"])
        assert shown(browser, "retained") == str(stats["retained_messages"]) == "1"
        assert 0 < int(shown(browser, "received-total")) <= sum(
            stats["messages_received"].values())
        assert int(shown(browser, "rate-in").replace(",", "")) > 0  # under load
        rows = browser.find_elements(By.CSS_SELECTOR, "#clients tbody tr")
        assert {row.get_attribute("data-client") for row in rows} == {
            "load-sub", "load-pub", "retainer"}

        wait.until(_delete_clicked)
        wait.until(lambda d: d.switch_to.alert).accept()
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR,
                                                 '#sessions tr[data-session="gone-away"]'))
        assert get_json(broker, "/api/v1/sessions/gone-away", token=TOKEN)[0] == 404
    finally:
        load.stop()
        broker.stop()


def _delete_clicked(driver: Any) -> bool:
    """Click the session's delete button; False (tried again) when the page re-rendered the
    table between finding the row and clicking (each poll replaces it)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        row = driver.find_element(By.CSS_SELECTOR, '#sessions tr[data-session="gone-away"]')
        row.find_element(By.TAG_NAME, "button").click()
    except StaleElementReferenceException:
        return False
    return True
