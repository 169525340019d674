"""Recipe: testing a paho-mqtt application against each fault.

The application: a thermostat that follows its set point (``home/setpoint``) and reports the
heater's state (``home/heater``, QoS 1). It uses paho-mqtt as most applications do: a
background loop, subscriptions made in ``on_connect`` so that they come back after a
reconnect, and its connection state kept for a status page.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest

from mqlite.testing import TestBroker


class Thermostat:
    def __init__(self, host: str, port: int) -> None:
        self.set_point = 20.0
        self.status = "starting"
        self.sessions = 0  # connections that got as far as their subscription
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "thermostat",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.on_subscribe = self._subscribed
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()

    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            with self.changed:
                self.status = f"refused: {reason}"
                self.changed.notify_all()
        else:
            client.subscribe("home/setpoint", qos=1)

    def _subscribed(self, client, userdata, mid, reasons, properties) -> None:
        with self.changed:
            self.status = "online"
            self.sessions += 1
            self.changed.notify_all()

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        with self.changed:
            self.status = "offline"
            self.changed.notify_all()

    def _message(self, client, userdata, message) -> None:
        self.set_point = float(message.payload)
        client.publish("home/heater", b"on" if self.set_point > 20 else b"off", qos=1)

    def wait_sessions(self, count: int, timeout: float = 5.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.sessions >= count, timeout)

    def wait_status(self, prefix: str, timeout: float = 5.0) -> str:
        with self.changed:
            assert self.changed.wait_for(lambda: self.status.startswith(prefix), timeout), \
                f"status is {self.status!r}"
            return self.status

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def thermostat(mqtt_broker: TestBroker):
    app = Thermostat(*mqtt_broker.address)
    app.wait_status("online")
    mqtt_broker.wait_for_client("thermostat")
    yield app
    app.stop()


def test_it_follows_its_set_point(mqtt_broker: TestBroker, thermostat: Thermostat) -> None:
    mqtt_broker.publish("home/setpoint", "22.5", qos=1)
    [heater] = mqtt_broker.wait_for("home/heater")
    assert heater.payload == b"on" and heater.client_id == "thermostat"


@pytest.mark.parametrize("how", ["close", "reset"])
def test_it_comes_back_after_a_dropped_connection(mqtt_broker: TestBroker,
                                                  thermostat: Thermostat, how: str) -> None:
    mqtt_broker.drop("thermostat", how=how)
    thermostat.wait_sessions(2)  # reconnected by paho's loop, subscribed again
    mqtt_broker.publish("home/setpoint", "18", qos=1)
    assert mqtt_broker.wait_for("home/heater")[0].payload == b"off"


def test_a_lost_acknowledgement_means_one_more_copy_not_a_lost_report(
        mqtt_broker: TestBroker, thermostat: Thermostat) -> None:
    with mqtt_broker.withhold("thermostat", packet="PUBACK"):
        mqtt_broker.publish("home/setpoint", "25", qos=1)
        mqtt_broker.wait_for("home/heater")
        mqtt_broker.drop("thermostat")  # before its PUBACK came
        thermostat.wait_sessions(2)
        [first, again] = mqtt_broker.wait_for("home/heater", count=2)  # paho resent it
    assert first.payload == again.payload == b"on"


def test_it_reports_a_refusal(mqtt_broker: TestBroker) -> None:
    with mqtt_broker.refuse_connects(0x87, count=100):
        app = Thermostat(*mqtt_broker.address)
        assert app.wait_status("refused") == "refused: Not authorized"
    app.wait_status("online")  # and it kept trying
    app.stop()
