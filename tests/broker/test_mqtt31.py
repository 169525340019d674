"""MQTT 3.1 (protocol name "MQIsdp", level 3): old devices still speak it, and mosquitto, EMQX
and HiveMQ accept it. Its packets are 3.1.1's, less the session present flag and SUBACK's
failure code; its client id is required and 1 to 23 characters long."""

from __future__ import annotations

import pytest

from mqlite.broker import Broker
from mqlite.protocol import (
    Connack,
    Connect,
    Publish,
    Suback,
    Subscribe,
    Subscription,
)

from .helpers import PahoClient, RawClient, wait_until


def _raw31(broker: Broker) -> RawClient:
    return RawClient(broker.address, version=3)


def test_mqtt31_connect_is_accepted_with_golden_bytes(broker: Broker) -> None:
    raw = _raw31(broker)
    raw.send_bytes(bytes.fromhex("100f 0006 4d5149736470 03 02 003c 0001 63".replace(" ", "")))
    assert raw.sock.recv(16) == bytes.fromhex("20020000")
    raw.ping()
    assert broker.core.sessions["c"].protocol_version == 3


def test_mqtt31_publish_and_subscribe_end_to_end(broker: Broker) -> None:
    raw = _raw31(broker)
    assert raw.connect(client_id="old-device") == Connack()
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="cmd/#", qos=1)]))
    assert raw.receive() == Suback(packet_id=1, reason_codes=[1])
    modern = PahoClient(broker.address, client_id="modern", version=5)
    modern.connect()
    modern.subscribe("status", qos=1)
    modern.publish("cmd/reboot", b"now", qos=1)
    publish = raw.receive()
    assert isinstance(publish, Publish) and (publish.topic, publish.payload) == ("cmd/reboot",
                                                                               b"now")
    raw.send(Publish(topic="status", payload=b"up", qos=0))
    assert modern.message().payload == b"up"


@pytest.mark.parametrize("client_id", ["", "x" * 24], ids=["empty", "24-characters"])
def test_mqtt31_client_id_outside_1_to_23_is_rejected_with_code_2(
        broker: Broker, client_id: str) -> None:
    raw = _raw31(broker)
    raw.send(Connect(client_id=client_id, protocol_version=3))
    assert raw.expect_closed() == [Connack(reason_code=2)]


def test_mqtt31_client_id_of_23_characters_is_accepted(broker: Broker) -> None:
    assert _raw31(broker).connect(client_id="é" * 23) == Connack()


def test_mqtt31_persistent_session_resumes_without_a_session_present_flag(
        broker: Broker) -> None:
    raw = _raw31(broker)
    raw.connect(client_id="keeper", clean_start=False)
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="q", qos=1)]))
    raw.receive()
    raw.close()
    wait_until(lambda: broker.core.sessions["keeper"].connection is None)
    publisher = PahoClient(broker.address, client_id="pub")
    publisher.connect()
    publisher.publish("q", b"kept", qos=1)
    again = _raw31(broker)
    assert again.connect(client_id="keeper", clean_start=False) == Connack()  # flag reserved
    publish = again.receive()
    assert isinstance(publish, Publish) and publish.payload == b"kept"


def test_mqtt31_failed_subscription_closes(broker: Broker) -> None:
    """3.1 has no SUBACK failure code (0x80 came with 3.1.1): the connection is closed."""
    raw = _raw31(broker)
    raw.connect(client_id="bad-filter")
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="a/#/b")]))
    assert raw.expect_closed() == []


def test_paho_mqtt31_client_connects() -> None:
    with Broker(port=0) as broker:
        client = PahoClient(broker.address, client_id="paho31", version=3)
        assert client.connect()[1] == 0
        assert client.subscribe("t", qos=2)[0] == 2
        client.publish("t", b"31", qos=2)
        assert client.message().payload == b"31"
        client.disconnect()
