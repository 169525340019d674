"""Settings that exist for mosquitto's options of the same names: allow_zero_length_clientid,
message_size_limit, upgrade_outgoing_qos and max_inflight_bytes."""

from __future__ import annotations

import pytest

from mqlite.protocol import (
    Connack,
    Connect,
    Properties,
    Puback,
    Publish,
    ReasonCode,
)

from ..conftest import BrokerFactory
from .helpers import RawClient


@pytest.mark.parametrize(("version", "code"), [(4, 2), (5, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID)])
def test_allow_zero_length_clientid_off_refuses_an_empty_id(make_broker: BrokerFactory,
                                                             version: int, code: int) -> None:
    broker = make_broker(allow_zero_length_clientid=False)
    client = RawClient(broker.address, version=version)
    client.send(Connect(client_id="", protocol_version=version))
    connack = client.receive()
    assert isinstance(connack, Connack) and connack.reason_code == code
    client.expect_closed()
    named = RawClient(broker.address, version=version)
    assert named.connect(client_id="named").reason_code == 0


@pytest.mark.parametrize(("version", "code"),
                         [(4, 0), (5, ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR)])
def test_message_size_limit_completes_the_flow_without_routing(make_broker: BrokerFactory,
                                                              version: int, code: int) -> None:
    broker = make_broker(message_size_limit=10)
    sub = RawClient(broker.address)
    sub.connect(client_id="sub")
    sub.subscribe("t", qos=1)
    pub = RawClient(broker.address, version=version)
    pub.connect(client_id="pub")
    pub.send(Publish(topic="t", payload=b"x" * 11, qos=1, packet_id=1))
    ack = pub.receive()
    assert isinstance(ack, Puback) and ack.reason_code == code
    pub.send(Publish(topic="t", payload=b"x" * 10, qos=1, packet_id=2))
    assert isinstance(pub.receive(), Puback)
    delivered = sub.receive()
    assert isinstance(delivered, Publish) and delivered.payload == b"x" * 10, \
        "the oversized one was not routed"
    assert broker.core.stats.messages_dropped == 1


@pytest.mark.parametrize(("upgrade", "qos"), [(False, 0), (True, 1)])
def test_upgrade_outgoing_qos(make_broker: BrokerFactory, upgrade: bool, qos: int) -> None:
    broker = make_broker(upgrade_outgoing_qos=upgrade)
    sub = RawClient(broker.address)
    sub.connect(client_id="sub")
    sub.subscribe("t", qos=1)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    pub.send(Publish(topic="t", payload=b"q0", qos=0, properties=Properties()))
    delivered = sub.receive()
    assert isinstance(delivered, Publish) and delivered.qos == qos


def test_max_inflight_bytes_holds_the_rest_in_the_queue(make_broker: BrokerFactory) -> None:
    broker = make_broker(max_inflight_bytes=100)
    sub = RawClient(broker.address)
    sub.connect(client_id="slow")
    sub.subscribe("t", qos=1)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    for number in range(3):
        pub.send(Publish(topic="t", payload=bytes([number]) * 60, qos=1, packet_id=number + 1))
        assert isinstance(pub.receive(), Puback)
    first, second = sub.receive(), sub.receive()  # 0 then 60 bytes in flight: both go
    assert isinstance(first, Publish) and isinstance(second, Publish)
    sub.ping()  # 120 bytes in flight: the third waits, so the PINGRESP comes next
    assert first.packet_id is not None
    sub.send(Puback(packet_id=first.packet_id))
    third = sub.receive()
    assert isinstance(third, Publish) and third.payload == bytes([2]) * 60
