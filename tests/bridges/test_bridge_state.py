"""A bridge's visible state: the retained notification topic here and on the remote broker
("1" connected, "0" not; a clean stop sets "0" there), its metrics and the admin API."""

from __future__ import annotations

from pathlib import Path

from mqlite.broker.bridge_config import BridgeConfig, BridgeTopic

from ..broker.helpers import PahoClient, wait_until
from ..interop.mosquitto import TIMEOUT, require_mosquitto, start_mosquitto
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
