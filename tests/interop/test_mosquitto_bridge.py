"""A real mosquitto bridging to mqlite with its default bridge settings (try_private true:
protocol level 0x84; notifications true: its state, and its will, on
``$SYS/broker/connection/<client id>/state``), messages both ways, MQTT 3.1.1 and 5."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlite.broker import Broker

from ..broker.helpers import PahoClient, wait_until
from .mosquitto import require_mosquitto, start_mosquitto

require_mosquitto()

BRIDGE_ID = "mqlite.bridge-test"


@pytest.fixture(params=["mqttv311", "mqttv50"], ids=["3.1.1", "5.0"])
def bridged(request: pytest.FixtureRequest, tmp_path: Path
            ) -> Iterator[tuple[Broker, int, subprocess.Popen[bytes]]]:
    """mqlite, and a mosquitto whose only bridge setting beyond the defaults is its protocol
    version and an explicit client id (the default one names this machine)."""
    with Broker(port=0) as broker:
        host, port = broker.address
        process, mosquitto_port = start_mosquitto(tmp_path, (
            "connection mqlite\n"
            f"address {host}:{port}\n"
            f"remote_clientid {BRIDGE_ID}\n"
            f"bridge_protocol_version {request.param}\n"
            "topic t/# both 1\n"))
        try:
            wait_until(lambda: _bridge_subscribed(broker), timeout=10,
                       what="mosquitto's bridge to connect and subscribe")
            yield broker, mosquitto_port, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(10)


def _bridge_subscribed(broker: Broker) -> bool:
    session = broker.core.sessions.get(BRIDGE_ID)
    return bool(session and session.connection and session.subscriptions)


def test_default_bridge_connects_as_a_bridge(
        bridged: tuple[Broker, int, subprocess.Popen[bytes]]) -> None:
    broker, _, _ = bridged
    session = broker.core.sessions[BRIDGE_ID]
    assert session.connection is not None
    assert session.connection.bridge == (session.protocol_version == 4)  # 0x84; v5: no bit
    watcher = PahoClient(broker.address, client_id="watcher", version=5)
    watcher.connect()
    watcher.subscribe(f"$SYS/broker/connection/{BRIDGE_ID}/state", qos=1)
    state = watcher.message()
    assert (state.payload, state.retain) == (b"1", True)


def test_messages_cross_both_ways_once(
        bridged: tuple[Broker, int, subprocess.Popen[bytes]]) -> None:
    broker, mosquitto_port, _ = bridged
    on_mqlite = PahoClient(broker.address, client_id="on-mqlite")
    on_mqlite.connect()
    on_mqlite.subscribe("t/#", qos=1)
    on_mosquitto = PahoClient(("127.0.0.1", mosquitto_port), client_id="on-mosquitto")
    on_mosquitto.connect()
    on_mosquitto.subscribe("t/#", qos=1)
    on_mqlite.publish("t/up", b"from mqlite", qos=1)
    assert on_mosquitto.message().payload == b"from mqlite"
    assert on_mqlite.message().payload == b"from mqlite"
    on_mosquitto.publish("t/down", b"from mosquitto", qos=1)
    assert on_mqlite.message().payload == b"from mosquitto"
    assert on_mosquitto.message().payload == b"from mosquitto"
    # No echo: neither message comes back over the bridge a second time.
    on_mqlite.no_message()
    on_mosquitto.no_message()


def test_retained_message_crosses_as_retained(
        bridged: tuple[Broker, int, subprocess.Popen[bytes]]) -> None:
    broker, mosquitto_port, _ = bridged
    # Once this subscriber on mosquitto has the message, mosquitto has stored it too.
    arrived = PahoClient(("127.0.0.1", mosquitto_port), client_id="arrived")
    arrived.connect()
    arrived.subscribe("t/retained", qos=1)
    publisher = PahoClient(broker.address, client_id="retainer")
    publisher.connect()
    publisher.publish("t/retained", b"kept", qos=1, retain=True)
    assert arrived.message().payload == b"kept"
    late = PahoClient(("127.0.0.1", mosquitto_port), client_id="late")
    late.connect()
    late.subscribe("t/retained", qos=1)
    message = late.message()
    assert (message.payload, message.retain) == (b"kept", True)


def test_killed_bridge_leaves_its_will_on_its_state_topic(
        bridged: tuple[Broker, int, subprocess.Popen[bytes]]) -> None:
    broker, _, process = bridged
    watcher = PahoClient(broker.address, client_id="state-watcher", version=5)
    watcher.connect()
    watcher.subscribe("$SYS/broker/connection/+/state", qos=1)
    assert watcher.message().payload == b"1"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    message = watcher.message()
    assert (message.topic, message.payload) == (f"$SYS/broker/connection/{BRIDGE_ID}/state",
                                                b"0")
