"""Bad input at the codec level: cases 1, 2, 9-14, 16, 17 and 23 of
tests/robustness/CASES.md.

Each case names the error class and the reason code a broker would answer an MQTT 5 client
with; the broker tests check the connection-level behaviour.
"""

from __future__ import annotations

import tracemalloc

import pytest

from mqlite.protocol import (
    Connect,
    InvalidTopic,
    MalformedPacket,
    MQTTError,
    PacketReader,
    PacketTooLarge,
    Properties,
    ProtocolError,
    Publish,
    ReasonCode,
    UnsupportedProtocolVersion,
    decode,
    encode,
    validate_topic_filter,
)
from mqlite.protocol.wire import encode_string

CONNECT_V311 = bytes.fromhex("100e00044d5154540402003c00026331")
CONNECT_V5 = bytes.fromhex("100f00044d5154540502003c0000026335")


def _frame(first: int, body: bytes) -> bytes:
    assert len(body) < 128
    return bytes([first, len(body)]) + body


def _raises(data: bytes, version: int, error: type[MQTTError], reason: int) -> MQTTError:
    with pytest.raises(error) as info:
        decode(data, version)
    assert info.value.reason_code == reason
    return info.value


# B5 1: first packet is not CONNECT and declares a huge length.
@pytest.mark.parametrize("first", [0x20, 0x30, 0x40, 0x62, 0x82, 0xC0, 0xE0, 0xF0, 0x00])
def test_b5_1_first_packet_not_connect_rejected_at_first_byte(first: int) -> None:
    reader = PacketReader("server")
    with pytest.raises(ProtocolError, match="first packet must be CONNECT"):
        list(reader.feed(bytes([first, 0x80, 0x80, 0x80, 0x74]) + b"\x01" * 1000))


def test_b5_1_huge_declared_connect_never_allocated() -> None:
    """A CONNECT claiming 244 MB; the reader holds only what arrives, at the protocol limit."""
    reader = PacketReader("server")
    tracemalloc.start()
    try:
        assert list(reader.feed(bytes([0x10, 0x80, 0x80, 0x80, 0x74]))) == []
        for _ in range(64):
            assert list(reader.feed(b"\x01" * 16384)) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.buffered == 5 + 64 * 16384
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for 1 MiB received"


def test_b5_3_connect_over_the_limit_rejected_from_the_header() -> None:
    reader = PacketReader("server", max_packet_size=65_536)
    with pytest.raises(PacketTooLarge) as info:
        list(reader.feed(bytes([0x10, 0x80, 0x80, 0x40])))  # 1 MiB declared, no body yet
    assert info.value.reason_code == ReasonCode.PACKET_TOO_LARGE


def test_b5_4_publish_over_the_limit_rejected_before_its_body() -> None:
    reader = PacketReader("server", max_packet_size=65_536)
    assert len(list(reader.feed(CONNECT_V5))) == 1
    with pytest.raises(PacketTooLarge):
        list(reader.feed(bytes([0x30, 0x80, 0x80, 0x40]) + b"\x00" * 100))


# B5 2: a fifth Remaining Length byte.
def test_b5_2_remaining_length_of_five_bytes() -> None:
    reader = PacketReader("server")
    with pytest.raises(MalformedPacket, match="longer than 4 bytes") as info:
        list(reader.feed(bytes.fromhex("10ffffffff01")))
    assert info.value.reason_code == ReasonCode.MALFORMED_PACKET


def test_b5_2_four_length_bytes_then_waits() -> None:
    reader = PacketReader("any", version=4, max_packet_size=1 << 30)
    assert list(reader.feed(bytes.fromhex("30ffffff7f"))) == []
    assert reader.buffered == 5


# B5 9: invalid UTF-8 and U+0000.
BAD_UTF8 = [b"\xc0\xaf", b"\xed\xa0\x80", b"a\x00b"]


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "nul"])
@pytest.mark.parametrize("version", [4, 5])
def test_b5_9_bad_utf8_in_publish_topic(bad: bytes, version: int) -> None:
    body = len(bad).to_bytes(2, "big") + bad + (b"\x00" if version == 5 else b"")
    _raises(_frame(0x30, body), version, MalformedPacket, ReasonCode.MALFORMED_PACKET)


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "nul"])
def test_b5_9_bad_utf8_in_subscribe_filter(bad: bytes) -> None:
    body = b"\x00\x01" + len(bad).to_bytes(2, "big") + bad + b"\x00"
    _raises(_frame(0x82, body), 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "nul"])
@pytest.mark.parametrize("field", ["will topic", "username", "client id"])
def test_b5_9_bad_utf8_in_connect(bad: bytes, field: str) -> None:
    raw = len(bad).to_bytes(2, "big") + bad
    flags = {"will topic": 0x06, "username": 0x82, "client id": 0x02}[field]
    body = encode_string("MQTT") + bytes([4, flags]) + b"\x00\x3c"
    body += raw if field == "client id" else encode_string("c")
    if field == "will topic":
        body += raw + b"\x00\x00"
    if field == "username":
        body += raw
    error = _raises(_frame(0x10, body), 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)
    assert error.protocol_version == 4  # so a server can answer in the client's version


# B5 10: wildcards in a PUBLISH topic.
@pytest.mark.parametrize("topic", ["a/+/b", "#", "a/#", "+", "a+"])
@pytest.mark.parametrize("version", [4, 5])
def test_b5_10_wildcard_in_publish_topic(topic: str, version: int) -> None:
    body = encode_string(topic) + (b"\x00" if version == 5 else b"")
    _raises(_frame(0x30, body), version, InvalidTopic, ReasonCode.TOPIC_NAME_INVALID)


def test_b5_10_wildcard_in_will_topic() -> None:
    body = encode_string("MQTT") + bytes([4, 0x06]) + b"\x00\x3c" + encode_string("c")
    body += encode_string("a/#") + b"\x00\x00"
    _raises(_frame(0x10, body), 4, InvalidTopic, ReasonCode.TOPIC_NAME_INVALID)


# B5 11: zero-length topic.
def test_b5_11_zero_length_topic_v311() -> None:
    _raises(bytes.fromhex("30020000"), 4, ProtocolError, ReasonCode.PROTOCOL_ERROR)


def test_b5_11_zero_length_topic_v5_without_alias() -> None:
    _raises(bytes.fromhex("3003000000"), 5, ProtocolError, ReasonCode.PROTOCOL_ERROR)


def test_b5_11_zero_length_topic_v5_with_alias_is_accepted() -> None:
    packet = decode(bytes.fromhex("30070000032300017a"), 5)
    assert packet == Publish(topic="", payload=b"z", properties=Properties(topic_alias=1))


def test_b5_11_topic_alias_zero() -> None:
    _raises(bytes.fromhex("30070000032300007a"), 5, ProtocolError, ReasonCode.TOPIC_ALIAS_INVALID)


# B5 12: packet identifier 0.
@pytest.mark.parametrize("data", [
    "3205000161 0000", "82060000000161 00", "a2050000000161", "40020000", "62020000",
], ids=["publish", "subscribe", "unsubscribe", "puback", "pubrel"])
def test_b5_12_packet_id_zero(data: str) -> None:
    _raises(bytes.fromhex(data.replace(" ", "")), 4, ProtocolError, ReasonCode.PROTOCOL_ERROR)


# B5 13: bad fixed-header flags.
@pytest.mark.parametrize("data", [
    "3605000161 0001",  # PUBLISH QoS 3
    "800600010001 6100",  # SUBSCRIBE flags 0000
    "8a0600010001 6100",  # SUBSCRIBE flags 1010
    "a0050001000161",  # UNSUBSCRIBE flags 0000
    "60020001",  # PUBREL flags 0000
    "41020001",  # PUBACK flags 0001
    "c100",  # PINGREQ flags 0001
    "c00100",  # PINGREQ remaining length 1
    "e00100",  # 3.1.1 DISCONNECT remaining length 1
    "00020000",  # reserved type 0
    "f000",  # AUTH in 3.1.1
], ids=["publish-qos3", "subscribe-0000", "subscribe-1010", "unsubscribe-0000", "pubrel-0000",
        "puback-0001", "pingreq-0001", "pingreq-length-1", "disconnect-length-1", "type-0",
        "auth-in-3.1.1"])
def test_b5_13_bad_flags_and_fixed_lengths(data: str) -> None:
    _raises(bytes.fromhex(data.replace(" ", "")), 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)


def test_b5_13_publish_qos0_with_dup() -> None:
    _raises(bytes.fromhex("3803000161"), 4, ProtocolError, ReasonCode.PROTOCOL_ERROR)


# B5 14: truncated packets.
@pytest.mark.parametrize("data", [
    "3203000161",  # QoS 1 PUBLISH ending after the topic
    "82050001000161",  # SUBSCRIBE missing its options byte
    "3005ffff616161",  # string length prefix longer than the packet
    "3001 00",  # topic length cut in half
    "100400044d51",  # protocol name cut short
    "4001 00",  # PUBACK with one byte
    "2001 00",  # CONNACK with one byte
], ids=["publish-no-id", "subscribe-no-options", "long-string", "half-length", "connect-name",
        "puback-short", "connack-short"])
def test_b5_14_truncated(data: str) -> None:
    _raises(bytes.fromhex(data.replace(" ", "")), 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)


def test_b5_14_trailing_bytes_after_connect() -> None:
    _raises(CONNECT_V311[:1] + bytes([CONNECT_V311[1] + 1]) + CONNECT_V311[2:] + b"\x00", 4,
            MalformedPacket, ReasonCode.MALFORMED_PACKET)


# B5 16: invalid filters and empty SUBSCRIBE.
@pytest.mark.parametrize("topic_filter", ["a/#/b", "a#", "a/b+", "#/a", "$share/g",
                                          "$share//t", "$share/g+/t", "$share/g/a#"])
def test_b5_16_invalid_filter_syntax(topic_filter: str) -> None:
    """These decode (a v5 broker answers SUBACK 0x8F per filter); validation rejects them."""
    with pytest.raises(InvalidTopic) as info:
        validate_topic_filter(topic_filter)
    assert info.value.reason_code == ReasonCode.TOPIC_FILTER_INVALID


def test_b5_16_empty_filter_fails_validation() -> None:
    with pytest.raises(InvalidTopic):
        validate_topic_filter("")


@pytest.mark.parametrize("version", [4, 5])
def test_mqtt_4_7_3_1_empty_filter_in_subscribe_is_a_protocol_error(version: int) -> None:
    props = b"\x00" if version == 5 else b""
    body = b"\x00\x01" + props + encode_string("a") + b"\x01" + encode_string("") + b"\x01"
    _raises(_frame(0x82, body), version, ProtocolError, ReasonCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("version", [4, 5])
def test_mqtt_4_7_3_1_empty_filter_in_unsubscribe_is_a_protocol_error(version: int) -> None:
    props = b"\x00" if version == 5 else b""
    body = b"\x00\x01" + props + encode_string("") + encode_string("a")
    _raises(_frame(0xA2, body), version, ProtocolError, ReasonCode.PROTOCOL_ERROR)


def test_b5_16_subscribe_with_no_filters() -> None:
    _raises(bytes.fromhex("82020001"), 4, ProtocolError, ReasonCode.PROTOCOL_ERROR)


def test_b5_16_unsubscribe_with_no_filters() -> None:
    _raises(bytes.fromhex("a2020001"), 4, ProtocolError, ReasonCode.PROTOCOL_ERROR)


def test_b5_16_no_local_on_shared_subscription() -> None:
    body = b"\x00\x01\x00" + encode_string("$share/g/t") + b"\x04"
    _raises(_frame(0x82, body), 5, ProtocolError, ReasonCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("options", [0x03, 0x30, 0x40, 0x80], ids=["qos3", "rh3", "bit6", "bit7"])
def test_b5_16_bad_subscription_options_v5(options: int) -> None:
    body = b"\x00\x01\x00" + encode_string("t") + bytes([options])
    _raises(_frame(0x82, body), 5, MalformedPacket, ReasonCode.MALFORMED_PACKET)


def test_b5_16_v5_options_bits_are_reserved_in_v311() -> None:
    body = b"\x00\x01" + encode_string("t") + b"\x04"
    _raises(_frame(0x82, body), 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)


# B5 17: deep hierarchy.
def test_b5_17_publish_with_65535_levels_rejected() -> None:
    deep = "/" * 65_535
    data = bytes([0x30, 0x81, 0x80, 0x04]) + encode_string(deep)
    assert len(data) - 4 == 65_537
    _raises(data, 4, InvalidTopic, ReasonCode.TOPIC_NAME_INVALID)


def test_b5_17_level_limit_is_configurable() -> None:
    data = encode(Publish(topic="a/b/c/d"), 4)
    with pytest.raises(InvalidTopic):
        decode(data, 4, max_topic_levels=3)
    assert decode(data, 4, max_topic_levels=4) == Publish(topic="a/b/c/d")


def test_b5_17_filter_with_65535_levels_rejected() -> None:
    with pytest.raises(InvalidTopic):
        validate_topic_filter("+/" * 32_767 + "#")


# B5 23: MQTT 5 property abuse.
def _connect_v5(properties: bytes) -> bytes:
    body = encode_string("MQTT") + b"\x05\x02\x00\x3c" + properties + encode_string("c")
    length = len(body)
    header = bytearray([0x10])
    while True:
        byte = length & 0x7F
        length >>= 7
        header.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes(header) + body


def _props(raw: bytes) -> bytes:
    from mqlite.protocol.wire import encode_vbi

    return encode_vbi(len(raw)) + raw


def test_b5_23_ten_thousand_user_properties_decode() -> None:
    pair = b"\x26" + encode_string("k") + encode_string("v")
    packet = decode(_connect_v5(_props(pair * 10_000)), 5)
    assert len(packet.properties.user_property) == 10_000  # type: ignore[union-attr]


def test_b5_23_session_expiry_twice() -> None:
    raw = b"\x11\x00\x00\x00\x0a" * 2
    error = _raises(_connect_v5(_props(raw)), 5, ProtocolError, ReasonCode.PROTOCOL_ERROR)
    assert error.protocol_version == 5


def test_b5_23_will_property_not_allowed_in_will() -> None:
    """A CONNECT-only property (session expiry) among the will properties: Malformed (2.2.2.2)."""
    body = encode_string("MQTT") + b"\x05\x06\x00\x3c" + b"\x00" + encode_string("c")
    body += _props(b"\x11\x00\x00\x00\x0a") + encode_string("w") + encode_string("x")
    _raises(_frame(0x10, body), 5, MalformedPacket, ReasonCode.MALFORMED_PACKET)


def test_b5_23_will_property_of_wrong_type() -> None:
    """Content type (a string) whose length runs past the property block."""
    body = encode_string("MQTT") + b"\x05\x06\x00\x3c" + b"\x00" + encode_string("c")
    body += _props(b"\x03\x00\x09ab") + encode_string("w") + encode_string("x")
    _raises(_frame(0x10, body), 5, MalformedPacket, ReasonCode.MALFORMED_PACKET)


def test_b5_23_receive_maximum_zero() -> None:
    _raises(_connect_v5(_props(b"\x21\x00\x00")), 5, ProtocolError, ReasonCode.PROTOCOL_ERROR)


def test_b5_23_unknown_property_identifier() -> None:
    _raises(_connect_v5(_props(b"\x7f\x00")), 5, MalformedPacket, ReasonCode.MALFORMED_PACKET)


def test_b5_23_boolean_property_out_of_range() -> None:
    _raises(_connect_v5(_props(b"\x17\x02")), 5, ProtocolError, ReasonCode.PROTOCOL_ERROR)


# Protocol names and levels (spec checklist 7, 8, 66).
@pytest.mark.parametrize("name,level", [("MQTT", 3), ("MQTT", 6), ("MQIsdp", 4), ("MQTX", 4),
                                        ("MQTT", 0x86), ("MQIsdp", 0x84), ("MQTT", 0x80)])
def test_unsupported_protocol(name: str, level: int) -> None:
    body = encode_string(name) + bytes([level, 0x02]) + b"\x00\x3c" + encode_string("c")
    error = _raises(_frame(0x10, body), 4, UnsupportedProtocolVersion,
                    ReasonCode.UNSUPPORTED_PROTOCOL_VERSION)
    assert isinstance(error, UnsupportedProtocolVersion)
    assert (error.protocol_name, error.protocol_level) == (name, level)


@pytest.mark.parametrize("flags", [0x03, 0x18, 0x08, 0x20, 0x40],
                         ids=["reserved", "will-qos3", "qos-without-will", "retain-without-will",
                              "password-without-username"])
def test_connect_flag_rules_v311(flags: int) -> None:
    body = encode_string("MQTT") + bytes([4, flags]) + b"\x00\x3c" + encode_string("c")
    if flags == 0x40:
        body += encode_string("p")
    _raises(_frame(0x10, body), 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)


def test_v5_allows_password_without_username() -> None:
    body = encode_string("MQTT") + bytes([5, 0x42]) + b"\x00\x3c\x00" + encode_string("c")
    body += encode_string("p")
    assert decode(_frame(0x10, body), 5).password == b"p"  # type: ignore[union-attr]


@pytest.mark.parametrize("data,version", [
    ("40030001 05", 5), ("62030001 10", 5), ("9003000103", 4), ("20020006", 4),
    ("2003000104 00", 5), ("e001 05", 5), ("f001 01", 5), ("b00400010005", 5),
    ("20020101", 4),
], ids=["puback", "pubrel", "suback-v3", "connack-v3", "connack-v5", "disconnect", "auth",
        "unsuback", "connack-session-present-on-refusal"])
def test_undefined_reason_codes(data: str, version: int) -> None:
    _raises(bytes.fromhex(data.replace(" ", "")), version, ProtocolError,
            ReasonCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("flags", [0x03, 0x08, 0x20], ids=["reserved", "qos-without-will",
                                                           "retain-without-will"])
def test_mqtt31_reads_unused_connect_bits_as_mosquitto_does(flags: int) -> None:
    """MQTT 3.1 reserved none of these bits; mosquitto ignores them, and so do we."""
    body = encode_string("MQIsdp") + bytes([3, flags]) + b"\x00\x3c" + encode_string("c")
    packet = decode(_frame(0x10, body), 4)
    assert isinstance(packet, Connect) and packet.will is None and packet.protocol_version == 3


def test_mqtt31_will_qos3_is_still_malformed() -> None:
    body = encode_string("MQIsdp") + bytes([3, 0x1C]) + b"\x00\x3c" + encode_string("c")
    body += encode_string("w") + encode_string("x")
    _raises(_frame(0x10, body), 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)


@pytest.mark.parametrize("data", ["6a 02 0001", "8a 06 0001 0001 61 01", "aa 05 0001 0001 61"],
                         ids=["pubrel", "subscribe", "unsubscribe"])
def test_mqtt31_allows_dup_on_its_qos1_control_packets(data: str) -> None:
    raw = bytes.fromhex(data.replace(" ", ""))
    assert decode(raw, 3).packet_type.value == raw[0] >> 4
    _raises(raw, 4, MalformedPacket, ReasonCode.MALFORMED_PACKET)
