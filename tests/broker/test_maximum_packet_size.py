"""The client's Maximum Packet Size bounds every packet the broker sends, CONNACK included
[MQTT-3.1.2-24]: optional properties are left out to fit; what cannot fit is not sent."""

from __future__ import annotations

import pytest

from mqlite.broker import Broker
from mqlite.protocol import (
    Connack,
    Connect,
    PacketReader,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
    encode,
    encode_within,
)

from .helpers import RawClient


def _connect_raw(broker: Broker, limit: int, client_id: str = "small") -> tuple[RawClient, bytes]:
    """Connect with Maximum Packet Size ``limit``; the CONNACK's bytes (b"" if closed)."""
    raw = RawClient(broker.address, version=5)
    raw.send(Connect(client_id=client_id, protocol_version=5,
                     properties=Properties(maximum_packet_size=limit)))
    data = b""
    while len(data) < 2 or len(data) < 2 + data[1]:
        chunk = raw.sock.recv(1024)
        if not chunk:
            break
        data += chunk
    raw.reader.feed(data[2 + data[1]:] if data else b"")
    return raw, data[:2 + data[1]] if data else b""


def test_default_connack_is_16_bytes(broker: Broker) -> None:
    _, connack = _connect_raw(broker, 1000)
    assert len(connack) == 16


@pytest.mark.parametrize("limit", [2, 12])
def test_mqtt_3_1_2_24_connack_that_cannot_fit_closes(broker: Broker, limit: int) -> None:
    """2 bytes: not even a CONNACK without properties. 12: not without dropping a limit."""
    raw, connack = _connect_raw(broker, limit)
    assert connack == b""
    assert raw.expect_closed() == []
    assert "small" not in broker.core.sessions


def test_mqtt_3_1_2_24_connack_leaves_out_optional_properties(broker: Broker) -> None:
    raw, data = _connect_raw(broker, 13)
    assert len(data) == 13
    [connack] = list(PacketReader("client", version=5).feed(data))
    assert isinstance(connack, Connack) and connack.reason_code == 0
    assert connack.properties.topic_alias_maximum is None  # absent: 0, no aliases to us
    assert connack.properties.maximum_packet_size is not None  # limits are never left out
    assert connack.properties.receive_maximum is not None
    raw.ping()


def test_mqtt_3_1_2_24_suback_that_cannot_fit_is_not_sent(broker: Broker) -> None:
    raw, _ = _connect_raw(broker, 13)
    filters = [Subscription(topic_filter=f"f/{i}", qos=1) for i in range(20)]
    raw.send(Subscribe(packet_id=1, subscriptions=filters))  # SUBACK would be 25 bytes
    raw.ping()  # the PINGRESP comes, no SUBACK before it
    assert set(broker.core.sessions["small"].subscriptions) == {f"f/{i}" for i in range(20)}


def test_encode_within_leaves_out_reason_string_then_user_properties() -> None:
    ack = Puback(packet_id=1, reason_code=ReasonCode.NOT_AUTHORIZED, properties=Properties(
        reason_string="a long reason" * 3, user_property=(("k", "v"),)))
    full = encode(ack, 5)
    without_reason = encode_within(ack, 5, len(full) - 1)
    assert without_reason is not None and b"long reason" not in without_reason
    assert b"\x26\x00\x01k" in without_reason
    bare = encode_within(ack, 5, 6)
    assert bare is not None and len(bare) <= 6
    assert encode_within(ack, 5, 3) is None
    assert encode_within(Pubcomp(packet_id=1), 5, 4) == bytes.fromhex("70020001")


def test_encode_within_never_cuts_a_publish() -> None:
    publish = Publish(topic="t", properties=Properties(user_property=(("k", "v"),)))
    assert encode_within(publish, 5, len(encode(publish, 5)) - 1) is None


def test_encode_within_suback_keeps_its_codes() -> None:
    suback = Suback(packet_id=1, reason_codes=[0, 1], properties=Properties(reason_string="x"))
    fitted = encode_within(suback, 5, 7)
    assert fitted == bytes.fromhex("9005000100" "0001")
