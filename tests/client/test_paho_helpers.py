"""paho's helper modules and conveniences, against a real broker: ``publish.single`` /
``multiple``, ``subscribe.simple`` / ``callback``, the decorator API, connection settings that
cannot change while connected, and ``loop_start()`` before ``connect()``."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import mqlite.client as mqtt
from mqlite.broker import Broker
from mqlite.client import publish, subscribe

TIMEOUT = 10


def test_publish_single_and_multiple_reach_a_subscribe_simple(broker: Broker) -> None:
    """Retained, so that the subscriber (after the publishers) gets them whatever the timing;
    each helper returns only once its messages are acknowledged."""
    host, port = broker.address
    publish.single("helpers/one", "1", qos=1, retain=True, hostname=host, port=port)
    publish.multiple([{"topic": "helpers/two", "payload": b"2", "qos": 1, "retain": True},
                      ("helpers/three", "3", 2, True)], hostname=host, port=port)
    messages = subscribe.simple("helpers/#", qos=1, msg_count=3, hostname=host, port=port,
                                client_id="helper-sub")
    assert isinstance(messages, list)
    assert sorted((m.topic, m.payload) for m in messages) == [
        ("helpers/one", b"1"), ("helpers/three", b"3"), ("helpers/two", b"2")]
    got: list[bytes] = []

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        got.append(message.payload)
        client.disconnect()

    subscribe.callback(on_message, "helpers/one", hostname=host, port=port)
    assert got == [b"1"]


def test_a_refused_connection_raises_mqtt_exception() -> None:
    with Broker(port=0, allow_anonymous=False, sys_interval=0) as broker:
        host, port = broker.address
        with pytest.raises(mqtt.MQTTException, match="refused"):
            publish.single("x", "y", hostname=host, port=port)
        with pytest.raises(mqtt.MQTTException, match="refused"):
            subscribe.simple("x", hostname=host, port=port)


def test_decorators_settings_and_loop_start_before_connect(broker: Broker) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "helper-deco")
    connected = threading.Event()

    @client.connect_callback()
    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        connected.set()

    assert client.on_connect is on_connect
    client.loop_start()  # before connect(), as paho allows
    client.connect(*broker.address)
    assert connected.wait(TIMEOUT)
    with pytest.raises(RuntimeError, match="established connection"):
        client.host = "elsewhere"
    with pytest.raises(RuntimeError):
        client.keepalive = 5
    client.disconnect()
    client.loop_stop()
    client.keepalive = 5  # closed by the program: settable again
    assert client.keepalive == 5
