"""The manual clock: what the protocol times happens when a test moves the clock, to the
second, and never on its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from paho.mqtt.packettypes import PacketTypes

from mqlite.testing import TestBroker, TestClient, broker

from ..broker.helpers import PahoClient, props


@pytest.fixture
def manual() -> Iterator[TestBroker]:
    with broker(clock="manual") as started:
        yield started


def session_ids(test_broker: TestBroker) -> list[str]:
    return sorted(s.client_id for s in test_broker.sessions())


def test_a_will_delay_of_90_seconds_passes_in_a_call(manual: TestBroker) -> None:
    with TestClient(manual, client_id="watcher") as watcher:
        watcher.subscribe("status/#", qos=1)
        device = PahoClient(manual.address, client_id="device", version=5)
        device.client.will_set("status/device", b"gone", qos=1,
                               properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=90))
        device.connect(session_expiry=3600)
        manual.drop("device", how="reset")
        device.stop()
        manual.advance(89.9)
        assert watcher.received == []
        manual.advance(0.1)
        [will] = watcher.wait_for("status/device")
        assert will.payload == b"gone"


def test_the_clock_stands_still_without_advance(manual: TestBroker) -> None:
    before = manual.clock.monotonic()
    with TestClient(manual, client_id="app") as app:
        app.publish("t", "x", qos=1)
    assert manual.clock.monotonic() == before
    manual.advance(2.5)
    assert manual.clock.monotonic() == before + 2.5
    with pytest.raises(ValueError, match="only moves ahead"):
        manual.advance(-1)


def test_session_expiry_ends_a_session_when_its_interval_has_passed(manual: TestBroker) -> None:
    app = PahoClient(manual.address, client_id="app", version=5, clean=False)
    app.connect(session_expiry=60)
    app.subscribe("jobs/#", qos=1)
    app.disconnect()
    manual.wait_for_client("app", connected=False)  # the expiry runs from then
    manual.advance(59)
    assert session_ids(manual) == ["app"]
    manual.advance(1)
    assert session_ids(manual) == []


def test_a_3_1_1_session_waits_for_the_brokers_expiry_setting() -> None:
    with broker(clock="manual", session_expiry=120) as test_broker:
        app = PahoClient(test_broker.address, client_id="app", version=4, clean=False)
        app.connect()
        app.disconnect()
        test_broker.wait_for_client("app", connected=False)
        test_broker.advance(119)
        assert session_ids(test_broker) == ["app"]
        test_broker.advance(2)
        assert session_ids(test_broker) == []


def test_message_expiry_counts_the_time_a_message_waited(manual: TestBroker) -> None:
    subscriber = PahoClient(manual.address, client_id="sub", version=5, clean=False)
    subscriber.connect(session_expiry=3600)
    subscriber.subscribe("alerts/#", qos=1)
    subscriber.disconnect()
    manual.wait_for_client("sub", connected=False)
    with TestClient(manual, client_id="sender", version=5) as sender:
        for topic, expiry in (("alerts/short", 30), ("alerts/long", 300)):
            info = sender.client.publish(topic, b"!", qos=1, properties=props(
                PacketTypes.PUBLISH, MessageExpiryInterval=expiry))
            info.wait_for_publish(5)
    manual.advance(100)
    subscriber.connect(session_expiry=3600)
    message = subscriber.message()
    assert message.topic == "alerts/long"
    assert message.properties.MessageExpiryInterval == 200  # what is left of it
    subscriber.no_message()
    subscriber.disconnect()


def test_a_retained_message_expires(manual: TestBroker) -> None:
    with TestClient(manual, client_id="sender", version=5) as sender:
        sender.client.publish("state/door", b"open", qos=1, retain=True, properties=props(
            PacketTypes.PUBLISH, MessageExpiryInterval=10)).wait_for_publish(5)
    manual.advance(9)
    assert [m.payload for m in manual.retained("state/#")] == [b"open"]
    manual.advance(1)
    assert manual.retained("state/#") == []


def test_clients_that_keep_their_connection_up_outlive_an_advance(manual: TestBroker) -> None:
    """No real time passes in advance(): a client whose loop runs is taken to have pinged."""
    with TestClient(manual, client_id="alive", keepalive=5) as alive:
        manual.advance(3600)
        assert [c.client_id for c in manual.clients()] == ["alive"]
        alive.publish("still/here", "yes", qos=1)

