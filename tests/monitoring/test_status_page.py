"""The status page in a real browser: headless Chromium, driven through Debian's chromedriver
(tests/webdriver.py), loads the page from a broker under load, is given the admin token when
the page asks for it, shows the numbers the API gives, and deletes a session with its
button."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlite.broker import Broker

from ..broker.helpers import PahoClient, RawClient
from ..browsers import require_chromedriver, require_chromium
from ..webdriver import Browser, wait_until
from .http_helpers import get_json, http_address, start

TOKEN = "a-token-for-the-status-page"

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    driver = Browser(require_chromium(), require_chromedriver(), tmp_path / "profile")
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


def refreshed(driver: Browser) -> int:
    return int(driver.find("body").attribute("data-refreshed") or 0)


def shown(driver: Browser, element_id: str) -> str:
    return driver.find(f"#{element_id}").text


def test_the_page_shows_what_the_api_says_and_acts(browser: Browser) -> None:
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
        # The API says 401, so the page asks for the token: give it once.
        wait_until(lambda: browser.find("#token-form").displayed(), 30, "the token form")
        browser.find("#token").send_keys(TOKEN)
        browser.find("#token-form button").click()
        wait_until(lambda: refreshed(browser) >= 2, 30, "two polls")  # the rates too
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
        # The chart's two gridlines are round and never the same label, even at 1/s or 0/s;
        # the totals read "received total N, sent total M".
        labels = browser.execute("return [0, 1, 7, 120].map(v => niceCeiling(v))"
                                 ".map(top => [rateLabel(top), rateLabel(top / 2)])")
        assert labels == [["2", "1"], ["2", "1"], ["10", "5"], ["200", "100"]]
        legend = browser.find(".legend .muted").text
        assert re.fullmatch(r"received total [\d,]+, sent total [\d,]+", legend), legend
        assert browser.execute("return getComputedStyle(document.getElementById("
                               "'received-total')).marginRight") == "0px"  # no gap before ","
        rows = browser.find_all("#clients tbody tr")
        assert {row.attribute("data-client") for row in rows} == {
            "load-sub", "load-pub", "retainer"}

        # Each poll re-renders the table: a click on a replaced row is tried again.
        wait_until(lambda: browser.find('#sessions tr[data-session="gone-away"] button')
                   .click() is None, 30, "the delete button")
        wait_until(lambda: browser.accept_alert() is None, 30, "the confirmation")
        wait_until(lambda: not browser.find_all('#sessions tr[data-session="gone-away"]'),
                   30, "the row to go")
        assert get_json(broker, "/api/v1/sessions/gone-away", token=TOKEN)[0] == 404
    finally:
        load.stop()
        broker.stop()
