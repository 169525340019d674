"""Recipe: porting a test that used a broker in Docker.

Before, a session fixture started ``eclipse-mosquitto`` with Docker (or the tests were
skipped without a Docker daemon) and handed out its address::

    @pytest.fixture(scope="session")
    def broker_address():
        container = docker.from_env().containers.run("eclipse-mosquitto:2", detach=True,
                                                     ports={"1883/tcp": None})
        ...  # wait for the port, read the mapped port back
        yield "localhost", port
        container.stop()

After: the ``mqtt_broker`` fixture unpacks to the same ``(host, port)``, so the fixture goes and
the tests stay as they were. Each test gets its own broker, which starts in milliseconds, so
no state leaks from one test into the next.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest


@pytest.fixture
def broker_address(mqtt_broker):
    return mqtt_broker  # was: the container's address


def test_the_unchanged_test(broker_address) -> None:
    host, port = broker_address
    received = []
    echoed = threading.Event()

    def on_message(client, userdata, message) -> None:
        received.append(message.payload)
        echoed.set()

    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "app")
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    client.subscribe("greetings", qos=1)
    assert subscribed.wait(5)
    client.publish("greetings", b"hello", qos=1).wait_for_publish(5)
    assert echoed.wait(5)
    client.disconnect()
    client.loop_stop()
    assert received == [b"hello"]
