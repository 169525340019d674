"""A bridge's visible state: the retained notification topic here and on the remote broker
("1" connected, "0" not; a clean stop sets "0" there), its metrics and the admin API."""

from __future__ import annotations

import logging
import re
import subprocess
import time
from pathlib import Path

import pytest

from mqlite.broker.bridge.config import BridgeConfig, BridgeTopic

from ..broker.helpers import PahoClient, wait_until
from ..interop.mosquitto import (
    TIMEOUT,
    free_port,
    require_mosquitto,
    start_mosquitto,
    wait_listening,
)
from ..monitoring.http_helpers import get_json, start
from ..monitoring.test_metrics import scrape

require_mosquitto()

STATE = "$SYS/broker/connection/edge-7/state"


def retained_state(address: tuple[str, int], name: str) -> bytes:
    client = PahoClient(address, client_id=name)
    client.connect()
    client.subscribe(STATE, 1)
    message = client.message()
    assert message.retain
    client.disconnect()
    return bytes(message.payload)


def test_notifications_metrics_and_the_admin_api(tmp_path: Path) -> None:
    process, port = start_mosquitto(tmp_path)
    broker = start(db=str(tmp_path / "mqlite.db"), bridges=[BridgeConfig(
        name="edge", addresses=(f"127.0.0.1:{port}",), client_id="edge-7",
        restart_timeout=(0.05, 0.2),
        topics=(BridgeTopic(pattern="data/#", direction="out", qos=1),))])
    local = broker.addresses["tcp"]
    try:
        bridge = broker.bridges[0]
        wait_until(lambda: bridge.stats.connected, what="the bridge to connect")
        wait_until(lambda: retained_state(local, "look-here") == b"1", what="state 1 here")
        assert retained_state(("127.0.0.1", port), "look-there") == b"1"
        publisher = PahoClient(local, client_id="pub")
        publisher.connect()
        for number in range(3):
            publisher.publish("data/x", b"%d" % number, qos=1)
        wait_until(lambda: bridge.stats.sent == 3, what="three acknowledged by mosquitto")
        samples = scrape(broker)
        labels = (("bridge", "edge"),)
        assert samples[("mqlite_bridge_connected", labels)] == 1
        assert samples[("mqlite_bridge_messages_sent_total", labels)] == 3
        assert samples[("mqlite_bridge_connects_total", labels)] == 1
        process.terminate()
        process.wait(TIMEOUT)
        wait_until(lambda: not bridge.stats.connected, what="the bridge to see mosquitto go")
        assert retained_state(local, "look-again") == b"0"
        for number in range(4):
            publisher.publish("data/y", b"%d" % number, qos=1)
        status, body = get_json(broker, "/api/v1/bridges")
        assert status == 200
        [view] = body["bridges"]
        assert (view["name"], view["connected"], view["messages_sent"]) == ("edge", False, 3)
        assert view["queued_messages"] == 4 and view["address"] == f"127.0.0.1:{port}"
        sys_values = broker.core.sys_tree.values(time.monotonic())  # sys_interval is 0 here
        assert sys_values["mqlite/bridges/edge/connected"] == "0"
        assert sys_values["mqlite/bridges/edge/messages/sent"] == "3"
        assert sys_values["mqlite/bridges/edge/messages/queued"] == "4"
        assert "cannot connect" in view["last_error"] or "disconnected" in view["last_error"]
        process, _ = start_mosquitto(tmp_path, port=port)
        wait_until(lambda: bridge.stats.sent == 7, timeout=20, what="the four forwarded")
    finally:
        broker.stop()
    # A clean stop leaves "0" on the remote broker (its DISCONNECT discards the will).
    try:
        assert retained_state(("127.0.0.1", port), "look-after") == b"0"
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def test_a_refused_bridge_is_retried_after_its_backoff(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """mosquitto refuses the bridge (no anonymous clients): the refusal is logged with its
    reason, and each retry waits the backoff (never a tight loop)."""
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\n")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process)
        caplog.set_level(logging.WARNING, logger="mqlite.broker")
        broker = start(db=str(tmp_path / "mqlite.db"), bridges=[BridgeConfig(
            name="edge", addresses=(f"127.0.0.1:{port}",), client_id="edge-7",
            restart_timeout=(0.4, 0.8),
            topics=(BridgeTopic(pattern="data/#", direction="out", qos=1),))])
        try:
            stats = broker.bridges[0].stats
            wait_until(lambda: "refused" in stats.last_error, what="the refusal")
            assert "Not authorized" in stats.last_error or "not authorised" in \
                stats.last_error.lower(), stats.last_error
            wait_until(lambda: len(_retries(caplog)) >= 2, what="two retries")
            assert stats.connects == 0 and not stats.connected
            assert all(delay >= 0.2 for delay in _retries(caplog))  # base / 2, with jitter
        finally:
            broker.stop()
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def _retries(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [float(match[1]) for record in caplog.records
            if (match := re.search(r"retrying in (\d+\.\d) s", record.getMessage()))]


def test_start_type_lazy_connects_at_the_threshold_and_leaves_when_idle(
        tmp_path: Path) -> None:
    process, port = start_mosquitto(tmp_path)
    broker = start(db=str(tmp_path / "mqlite.db"), bridges=[BridgeConfig(
        name="edge", addresses=(f"127.0.0.1:{port}",), client_id="edge-7",
        start_type="lazy", threshold=5, idle_timeout=1.0, restart_timeout=(0.05, 0.2),
        topics=(BridgeTopic(pattern="data/#", direction="out", qos=1),))])
    try:
        remote = PahoClient(("127.0.0.1", port), client_id="remote-sub")
        remote.connect()
        remote.subscribe("data/#", 1)
        publisher = PahoClient(broker.addresses["tcp"], client_id="pub")
        publisher.connect()
        bridge = broker.bridges[0]
        for number in range(4):
            publisher.publish("data/x", b"%d" % number, qos=1)
        assert bridge.stats.connects == 0  # four wait, below the threshold
        publisher.publish("data/x", b"4", qos=1)
        assert sorted(remote.message().payload for _ in range(5)) == [b"%d" % n for n in range(5)]
        assert bridge.stats.connects == 1
        # Nothing more to carry: it disconnects after idle_timeout, and says so.
        wait_until(lambda: not bridge.stats.connected, what="the idle disconnect")
        assert retained_state(broker.addresses["tcp"], "look-here") == b"0"
        assert bridge.stats.last_error == ""  # by choice, not a failure
    finally:
        broker.stop()
        process.terminate()
        process.wait(TIMEOUT)


def test_start_type_once_does_not_reconnect(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    process, port = start_mosquitto(tmp_path)
    caplog.set_level(logging.WARNING, logger="mqlite.broker")
    broker = start(db=str(tmp_path / "mqlite.db"), bridges=[BridgeConfig(
        name="edge", addresses=(f"127.0.0.1:{port}",), client_id="edge-7",
        start_type="once", restart_timeout=(0.05, 0.2),
        topics=(BridgeTopic(pattern="data/#", direction="out", qos=1),))])
    try:
        bridge = broker.bridges[0]
        wait_until(lambda: bridge.stats.connected, what="the bridge to connect")
        process.terminate()
        process.wait(TIMEOUT)
        wait_until(lambda: any("not reconnecting (start_type once)" in r.getMessage()
                               for r in caplog.records), what="the bridge to give up")
        assert not any("retrying in" in r.getMessage() for r in caplog.records)
        assert bridge.stats.connects == 1
    finally:
        broker.stop()
