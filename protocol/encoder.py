"""Encode packet objects to bytes for a protocol level (sans-IO).

Raises ``ValueError`` for a packet that cannot be put on the wire as asked (a field out of range,
a property the packet may not carry); it trusts the caller on everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .packet_types import PacketType as T
from .packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from .properties import EMPTY_PROPERTIES, Properties, encode_properties
from .wire import U16, encode_binary, encode_string, encode_vbi

_PROTOCOL_NAMES = {3: b"\x00\x06MQIsdp", 4: b"\x00\x04MQTT", 5: b"\x00\x04MQTT"}


def _frame(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_vbi(len(body)) + body


def _props(properties: Properties, version: int, packet_type: T) -> bytes:
    if version < 5:
        return b""
    return encode_properties(properties, packet_type)


def _check_packet_id(packet_id: int | None) -> int:
    if packet_id is None or not 1 <= packet_id <= 0xFFFF:
        raise ValueError(f"packet identifier must be 1..65535, not {packet_id}")
    return packet_id


def encode_publish(packet: Publish, version: int) -> bytes:
    return encode_publish_fields(packet.topic, packet.payload, packet.qos, packet.retain,
                                 packet.dup, packet.packet_id, packet.properties, version)


def encode_publish_fields(topic_name: str, payload: bytes, qos: int, retain: bool, dup: bool,
                          packet_id: int | None, properties: Properties, version: int) -> bytes:
    """PUBLISH is the hot path: keep it one straight line of concatenations, and let a broker
    forwarding a message encode it without building a Publish first."""
    topic = topic_name.encode("utf-8")
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    if qos:
        head = U16.pack(len(topic)) + topic + U16.pack(_check_packet_id(packet_id))
    else:
        head = U16.pack(len(topic)) + topic
    if version == 5:
        if properties is EMPTY_PROPERTIES:
            head += b"\x00"
        else:
            head += encode_properties(properties, T.PUBLISH)
    return bytes((first,)) + encode_vbi(len(head) + len(payload)) + head + payload


def encode_puback_success(packet_id: int) -> bytes:
    """PUBACK with reason Success and no properties: the same four bytes in 3.1.1 and 5.0
    (spec 3.4.2.1), and the packet a broker sends most often after PUBLISH."""
    return _PUBACK_SUCCESS + U16.pack(_check_packet_id(packet_id))


_PUBACK_SUCCESS = bytes((0x40, 2))


def _encode_connect(packet: Connect, version: int) -> bytes:
    level = packet.protocol_version
    if level not in _PROTOCOL_NAMES:
        raise ValueError(f"unknown protocol level {level}")
    flags = 0x02 if packet.clean_start else 0
    will = packet.will
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.username is not None:
        flags |= 0x80
    if packet.password is not None:
        if level < 5 and packet.username is None:
            raise ValueError("MQTT 3.1.1 needs a user name to send a password")
        flags |= 0x40
    wire_level = level | 0x80 if packet.bridge else level
    parts = [_PROTOCOL_NAMES[level], bytes((wire_level, flags)), U16.pack(packet.keep_alive)]
    parts.append(_props(packet.properties, level, T.CONNECT))
    parts.append(encode_string(packet.client_id))
    if will is not None:
        parts.append(_props(will.properties, level, T.WILL))
        parts.append(encode_string(will.topic))
        parts.append(encode_binary(will.payload))
    if packet.username is not None:
        parts.append(encode_string(packet.username))
    if packet.password is not None:
        parts.append(encode_binary(packet.password))
    return _frame(0x10, b"".join(parts))


def _encode_connack(packet: Connack, version: int) -> bytes:
    body = bytes((1 if packet.session_present else 0, packet.reason_code))
    return _frame(0x20, body + _props(packet.properties, version, T.CONNACK))


def _ack_encoder(first_byte: int, packet_type: T) -> Callable[[Any, int], bytes]:
    def encode(packet: Puback | Pubrec | Pubrel | Pubcomp, version: int) -> bytes:
        packet_id = U16.pack(_check_packet_id(packet.packet_id))
        properties = packet.properties
        if version < 5 or (packet.reason_code == 0 and properties is EMPTY_PROPERTIES):
            return bytes((first_byte, 2)) + packet_id
        body = packet_id + bytes((packet.reason_code,))
        if properties is not EMPTY_PROPERTIES:
            body += encode_properties(properties, packet_type)
        return _frame(first_byte, body)

    return encode


def _encode_subscribe(packet: Subscribe, version: int) -> bytes:
    parts = [U16.pack(_check_packet_id(packet.packet_id))]
    parts.append(_props(packet.properties, version, T.SUBSCRIBE))
    if not packet.subscriptions:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    for sub in packet.subscriptions:
        options = sub.qos
        if version == 5:
            options |= (
                (0x04 if sub.no_local else 0)
                | (0x08 if sub.retain_as_published else 0)
                | (sub.retain_handling << 4)
            )
        parts.append(encode_string(sub.topic_filter))
        parts.append(bytes((options,)))
    return _frame(0x82, b"".join(parts))


def _encode_suback(packet: Suback, version: int) -> bytes:
    body = U16.pack(_check_packet_id(packet.packet_id))
    body += _props(packet.properties, version, T.SUBACK) + bytes(packet.reason_codes)
    return _frame(0x90, body)


def _encode_unsubscribe(packet: Unsubscribe, version: int) -> bytes:
    if not packet.topic_filters:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    parts = [U16.pack(_check_packet_id(packet.packet_id))]
    parts.append(_props(packet.properties, version, T.UNSUBSCRIBE))
    parts.extend(encode_string(topic_filter) for topic_filter in packet.topic_filters)
    return _frame(0xA2, b"".join(parts))


def _encode_unsuback(packet: Unsuback, version: int) -> bytes:
    body = U16.pack(_check_packet_id(packet.packet_id))
    if version == 5:
        body += encode_properties(packet.properties, T.UNSUBACK) + bytes(packet.reason_codes)
    return _frame(0xB0, body)


def _encode_pingreq(packet: Pingreq, version: int) -> bytes:
    return b"\xc0\x00"


def _encode_pingresp(packet: Pingresp, version: int) -> bytes:
    return b"\xd0\x00"


def _reason_encoder(first_byte: int, packet_type: T) -> Callable[[Any, int], bytes]:
    """DISCONNECT and AUTH: omit reason and properties when they are 0 and empty."""

    def encode(packet: Disconnect | Auth, version: int) -> bytes:
        if version < 5 or (packet.reason_code == 0 and packet.properties is EMPTY_PROPERTIES):
            return bytes((first_byte, 0))
        body = bytes((packet.reason_code,))
        if packet.properties is not EMPTY_PROPERTIES:
            body += encode_properties(packet.properties, packet_type)
        return _frame(first_byte, body)

    return encode


def _encode_auth(packet: Auth, version: int) -> bytes:
    if version < 5:
        raise ValueError("AUTH exists only in MQTT 5")
    return _encode_auth_v5(packet, version)


_encode_auth_v5 = _reason_encoder(0xF0, T.AUTH)

_ENCODERS: dict[type[Any], Callable[[Any, int], bytes]] = {
    Publish: encode_publish,
    Connect: _encode_connect,
    Connack: _encode_connack,
    Puback: _ack_encoder(0x40, T.PUBACK),
    Pubrec: _ack_encoder(0x50, T.PUBREC),
    Pubrel: _ack_encoder(0x62, T.PUBREL),
    Pubcomp: _ack_encoder(0x70, T.PUBCOMP),
    Subscribe: _encode_subscribe,
    Suback: _encode_suback,
    Unsubscribe: _encode_unsubscribe,
    Unsuback: _encode_unsuback,
    Pingreq: _encode_pingreq,
    Pingresp: _encode_pingresp,
    Disconnect: _reason_encoder(0xE0, T.DISCONNECT),
    Auth: _encode_auth,
}


def encode(packet: Packet, version: int) -> bytes:
    """The bytes of ``packet`` for protocol level ``version`` (3, 4 or 5).

    A CONNECT is encoded for its own ``protocol_version``.
    """
    return _ENCODERS[type(packet)](packet, version)


# What may be left out of a packet that would exceed the peer's Maximum Packet Size, in the
# order it is left out. Reason String and User Property: the spec says so for every packet
# [MQTT-3.1.2-24], [MQTT-3.2.2-19], [MQTT-3.2.2-20]. A CONNACK also loses what only informs
# the client, where absence means a default the server honours: no topic aliases towards it,
# no response information or server reference, no assigned identifier (a session it can then
# not resume). It never loses a limit, which would let the client do what the server refuses.
_OPTIONAL = ("reason_string", "user_property")
_OPTIONAL_IN_CONNACK = (*_OPTIONAL, "response_information", "server_reference",
                        "topic_alias_maximum", "assigned_client_identifier")


def encode_within(packet: Packet, version: int, limit: int) -> bytes | None:
    """``packet``'s bytes in at most ``limit`` bytes, leaving out optional properties as
    needed; ``None`` if it cannot fit. A PUBLISH is never cut: it is sent whole or not at
    all [MQTT-3.1.2-25]."""
    data = encode(packet, version)
    if len(data) <= limit:
        return data
    if version < 5 or isinstance(packet, (Publish, Pingreq, Pingresp)):
        return None
    names = _OPTIONAL_IN_CONNACK if isinstance(packet, Connack) else _OPTIONAL
    properties = packet.properties
    for name in names:
        value = getattr(properties, name)
        if value is None or value == ():
            continue
        absent: dict[str, Any] = {name: () if isinstance(value, tuple) else None}
        properties = replace(properties, **absent)
        if properties == EMPTY_PROPERTIES:
            properties = EMPTY_PROPERTIES  # the encoders' shortest form needs the singleton
        data = encode(replace(packet, properties=properties), version)
        if len(data) <= limit:
            return data
    return None
