"""Recipe: testing how an application handles retained state.

A dashboard shows the last known state of each door from the retained messages on
``doors/<name>``; an empty retained message means the door was removed.
"""

from __future__ import annotations

import mqlite.client as mqtt
from mqlite.testing import TestBroker, TestClient


def read_doors(host: str, port: int) -> dict[str, str]:
    """What a dashboard shows at start: the retained states, read once."""
    doors: dict[str, str] = {}
    with TestClient((host, port), client_id="dashboard") as client:
        client.subscribe("doors/+", qos=1)
        client.publish("dashboard/ready", "1", qos=1)  # its SUBACK came first: all retained in
        for message in client.received:
            if message.retain and message.payload:
                doors[message.topic.split("/")[1]] = message.payload.decode()
    return doors


def test_the_dashboard_starts_from_the_retained_state(mqtt_broker: TestBroker) -> None:
    mqtt_broker.publish("doors/front", "closed", qos=1, retain=True)
    mqtt_broker.publish("doors/garage", "open", qos=1, retain=True)
    assert read_doors(*mqtt_broker.address) == {"front": "closed", "garage": "open"}


def test_a_removed_door_is_gone(mqtt_broker: TestBroker) -> None:
    mqtt_broker.publish("doors/shed", "open", qos=1, retain=True)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "installer")
    publisher.connect(*mqtt_broker.address)
    publisher.loop_start()
    publisher.publish("doors/shed", b"", qos=1, retain=True).wait_for_publish(5)
    publisher.disconnect()
    publisher.loop_stop()
    assert mqtt_broker.retained("doors/#") == []
    assert read_doors(*mqtt_broker.address) == {}
