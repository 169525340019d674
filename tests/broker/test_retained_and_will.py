"""Retained messages (spec checklist A10, B 74) and wills (A11, B 79)."""

from __future__ import annotations

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqlite.broker import Broker
from mqlite.protocol import Disconnect, Properties, ReasonCode, Will

from .helpers import PahoClient, RawClient, props


def _client(broker: Broker, name: str, version: int) -> PahoClient:
    client = PahoClient(broker.address, client_id=name, version=version)
    client.connect()
    return client


def test_mqtt_3_3_1_6_retained_delivered_on_subscribe_with_retain_flag(
        broker: Broker, version: int) -> None:
    pub = _client(broker, "pub", version)
    pub.publish("status/a", b"old", qos=1, retain=True)
    pub.publish("status/a", b"new", qos=1, retain=True)  # replaces [MQTT-3.3.1-5]
    pub.publish("status/b", b"b", qos=0, retain=True)
    pub.publish("status/c", b"not retained", qos=1)  # [MQTT-3.3.1-12]
    pub.publish("other", b"", qos=1)  # barrier: the QoS 0 retain above has been handled
    sub = _client(broker, "sub", version)
    sub.subscribe("status/#", qos=1)
    got = sorted((m.topic, m.payload, m.retain) for m in (sub.message(), sub.message()))
    assert got == [("status/a", b"new", True), ("status/b", b"b", True)]
    sub.no_message()
    pub.publish("status/a", b"live", qos=1, retain=True)
    live = sub.message()
    assert (live.payload, live.retain) == (b"live", False)  # [MQTT-3.3.1-9]


def test_mqtt_3_3_1_10_empty_retained_payload_deletes(broker: Broker, version: int) -> None:
    pub = _client(broker, "pub", version)
    pub.publish("gone", b"here", qos=1, retain=True)
    listener = _client(broker, "listener", version)
    listener.subscribe("gone", qos=1)
    assert listener.message().retain
    pub.publish("gone", b"", qos=1, retain=True)
    assert listener.message().payload == b""  # delivered normally to current subscribers
    late = _client(broker, "late", version)
    late.subscribe("gone", qos=1)
    late.no_message()
    assert len(broker.core.retained) == 0 or "gone" not in {
        m.topic for m in broker.core.retained.matching("#", 0)}


@pytest.mark.parametrize("handling,expected_on_first,expected_on_repeat",
                         [(0, True, True), (1, True, False), (2, False, False)])
def test_mqtt_3_3_1_9_to_11_retain_handling(broker: Broker, handling: int,
                                            expected_on_first: bool,
                                            expected_on_repeat: bool) -> None:
    pub = _client(broker, "pub", 5)
    pub.publish("rh", b"kept", qos=1, retain=True)
    sub = _client(broker, "sub", 5)
    for expected in (expected_on_first, expected_on_repeat):
        sub.subscribe([("rh", SubscribeOptions(qos=1, retainHandling=handling))])
        if expected:
            assert sub.message().payload == b"kept"
        else:
            sub.no_message()


def test_mqtt_3_3_1_12_13_retain_as_published(broker: Broker) -> None:
    sub = _client(broker, "sub", 5)
    sub.subscribe([("rap/keep", SubscribeOptions(qos=1, retainAsPublished=True)),
                   ("rap/clear", SubscribeOptions(qos=1))])
    pub = _client(broker, "pub", 5)
    pub.publish("rap/keep", b"1", qos=1, retain=True)
    pub.publish("rap/clear", b"2", qos=1, retain=True)
    flags = {m.topic: m.retain for m in (sub.message(), sub.message())}
    assert flags == {"rap/keep": True, "rap/clear": False}


def test_retained_message_expires(broker: Broker) -> None:
    pub = _client(broker, "pub", 5)
    pub.publish("short", b"x", qos=1, retain=True,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=60))
    sub = _client(broker, "sub", 5)
    sub.subscribe("short", qos=1)
    assert 55 <= sub.message().properties.MessageExpiryInterval <= 60


def test_shared_subscription_gets_no_retained(broker: Broker) -> None:
    pub = _client(broker, "pub", 5)
    pub.publish("sh/x", b"r", qos=1, retain=True)
    sub = _client(broker, "sub", 5)
    sub.subscribe("$share/g/sh/#", qos=1)
    sub.no_message()


# -- wills ---------------------------------------------------------------------------------

def _watch(broker: Broker) -> PahoClient:
    watcher = PahoClient(broker.address, client_id="watcher", version=5)
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    return watcher


def test_mqtt_3_1_2_8_will_on_socket_close(broker: Broker, version: int) -> None:
    watcher = _watch(broker)
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id="w", will=Will(topic="wills/w", payload=b"lost", qos=1, retain=True))
    raw.close()
    message = watcher.message()
    assert (message.topic, message.payload, message.qos) == ("wills/w", b"lost", 1)
    late = _client(broker, "late", 4)
    late.subscribe("wills/#")
    assert late.message().retain  # the will's retain flag is honoured [MQTT-3.1.2-17]


def test_mqtt_3_14_4_3_no_will_after_disconnect(broker: Broker, version: int) -> None:
    watcher = _watch(broker)
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id="polite", will=Will(topic="wills/polite", payload=b"x"))
    raw.send(Disconnect())
    raw.expect_closed()
    watcher.no_message()


def test_will_on_protocol_error(broker: Broker, version: int) -> None:
    watcher = _watch(broker)
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id="rude", will=Will(topic="wills/rude", payload=b"bye"))
    raw.send_bytes(bytes.fromhex("3605000161 0001".replace(" ", "")))  # QoS 3
    raw.expect_closed()
    assert watcher.message().payload == b"bye"


def test_v5_disconnect_with_will_message(broker: Broker) -> None:
    watcher = _watch(broker)
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="w4", will=Will(topic="wills/w4", payload=b"asked"))
    raw.send(Disconnect(reason_code=ReasonCode.DISCONNECT_WITH_WILL_MESSAGE))
    raw.expect_closed()
    assert watcher.message().payload == b"asked"


def test_will_properties_travel_with_the_will(broker: Broker) -> None:
    watcher = _watch(broker)
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="wp", will=Will(topic="wills/wp", payload=b"{}", properties=Properties(
        content_type="application/json", user_property=(("k", "v"),))))
    raw.close()
    message = watcher.message()
    assert message.properties.ContentType == "application/json"
    assert message.properties.UserProperty == [("k", "v")]


def test_mqtt_3_1_3_9_will_delay_cancelled_by_reconnect(broker: Broker) -> None:
    watcher = _watch(broker)
    properties = Properties(session_expiry_interval=300)
    will = Will(topic="wills/delayed", payload=b"late",
                properties=Properties(will_delay_interval=2))
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="wd", clean_start=False, properties=properties, will=will)
    raw.close()
    again = RawClient(broker.address, version=5)
    assert again.connect(client_id="wd", clean_start=False,
                         properties=properties).session_present
    watcher.no_message(within=2.5)  # past the delay: the reconnect cancelled the will


def test_will_delay_then_published(broker: Broker) -> None:
    watcher = _watch(broker)
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="wd2", clean_start=False,
                properties=Properties(session_expiry_interval=300),
                will=Will(topic="wills/wd2", payload=b"after 1s",
                          properties=Properties(will_delay_interval=1)))
    raw.close()
    watcher.no_message(within=0.5)
    assert watcher.message(timeout=3).payload == b"after 1s"


def test_will_sent_when_session_ends_before_the_delay(broker: Broker) -> None:
    """Published at the earlier of the will delay and the session's end."""
    watcher = _watch(broker)
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="wd3", properties=Properties(session_expiry_interval=1),
                will=Will(topic="wills/wd3", payload=b"session over",
                          properties=Properties(will_delay_interval=60)))
    raw.close()
    assert watcher.message(timeout=3).payload == b"session over"
