"""The ``mqtt_broker`` fixture registered through the pytest11 entry point."""

from __future__ import annotations

from ..broker.helpers import PahoClient


def test_mqtt_broker_fixture_serves_a_real_client(mqtt_broker: tuple[str, int]) -> None:
    host, port = mqtt_broker
    assert host == "127.0.0.1" and port > 0
    client = PahoClient(mqtt_broker, client_id="app")
    client.connect()
    client.subscribe("app/#", qos=1)
    client.publish("app/ready", b"yes", qos=1)
    assert client.message().payload == b"yes"
    client.disconnect()
