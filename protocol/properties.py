"""MQTT 5.0 properties (spec 2.2.2): one table says each property's identifier, type, the packets
that may carry it and whether it may repeat; decoding and encoding both follow it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, NamedTuple

from .errors import MalformedPacket, ProtocolError
from .packet_types import PacketType as T
from .reason_codes import ReasonCode
from .wire import (
    MAX_UINT16,
    MAX_UINT32,
    MAX_VBI,
    U16,
    U32,
    decode_utf8,
    decode_vbi,
    encode_binary,
    encode_string,
    encode_vbi,
)


class PropertyType(Enum):
    BYTE = "byte"
    UINT16 = "two-byte integer"
    UINT32 = "four-byte integer"
    VBI = "variable byte integer"
    UTF8 = "UTF-8 string"
    BINARY = "binary data"
    UTF8_PAIR = "UTF-8 string pair"


class PropertySpec(NamedTuple):
    identifier: int
    name: str
    type: PropertyType
    packets: frozenset[T]
    # Which packets may carry it more than once.
    repeatable_in: frozenset[T] = frozenset()


_B, _U16, _U32, _VBI = PropertyType.BYTE, PropertyType.UINT16, PropertyType.UINT32, PropertyType.VBI
_STR, _BIN, _PAIR = PropertyType.UTF8, PropertyType.BINARY, PropertyType.UTF8_PAIR
_PUB_WILL = frozenset({T.PUBLISH, T.WILL})
_ALL = frozenset(T)

PROPERTY_SPECS: tuple[PropertySpec, ...] = (
    PropertySpec(0x01, "payload_format_indicator", _B, _PUB_WILL),
    PropertySpec(0x02, "message_expiry_interval", _U32, _PUB_WILL),
    PropertySpec(0x03, "content_type", _STR, _PUB_WILL),
    PropertySpec(0x08, "response_topic", _STR, _PUB_WILL),
    PropertySpec(0x09, "correlation_data", _BIN, _PUB_WILL),
    PropertySpec(0x0B, "subscription_identifier", _VBI, frozenset({T.PUBLISH, T.SUBSCRIBE}),
                 frozenset({T.PUBLISH})),
    PropertySpec(0x11, "session_expiry_interval", _U32,
                 frozenset({T.CONNECT, T.CONNACK, T.DISCONNECT})),
    PropertySpec(0x12, "assigned_client_identifier", _STR, frozenset({T.CONNACK})),
    PropertySpec(0x13, "server_keep_alive", _U16, frozenset({T.CONNACK})),
    PropertySpec(0x15, "authentication_method", _STR, frozenset({T.CONNECT, T.CONNACK, T.AUTH})),
    PropertySpec(0x16, "authentication_data", _BIN, frozenset({T.CONNECT, T.CONNACK, T.AUTH})),
    PropertySpec(0x17, "request_problem_information", _B, frozenset({T.CONNECT})),
    PropertySpec(0x18, "will_delay_interval", _U32, frozenset({T.WILL})),
    PropertySpec(0x19, "request_response_information", _B, frozenset({T.CONNECT})),
    PropertySpec(0x1A, "response_information", _STR, frozenset({T.CONNACK})),
    PropertySpec(0x1C, "server_reference", _STR, frozenset({T.CONNACK, T.DISCONNECT})),
    PropertySpec(0x1F, "reason_string", _STR,
                 frozenset({T.CONNACK, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBACK,
                            T.UNSUBACK, T.DISCONNECT, T.AUTH})),
    PropertySpec(0x21, "receive_maximum", _U16, frozenset({T.CONNECT, T.CONNACK})),
    PropertySpec(0x22, "topic_alias_maximum", _U16, frozenset({T.CONNECT, T.CONNACK})),
    PropertySpec(0x23, "topic_alias", _U16, frozenset({T.PUBLISH})),
    PropertySpec(0x24, "maximum_qos", _B, frozenset({T.CONNACK})),
    PropertySpec(0x25, "retain_available", _B, frozenset({T.CONNACK})),
    PropertySpec(0x26, "user_property", _PAIR, _ALL, _ALL),
    PropertySpec(0x27, "maximum_packet_size", _U32, frozenset({T.CONNECT, T.CONNACK})),
    PropertySpec(0x28, "wildcard_subscription_available", _B, frozenset({T.CONNACK})),
    PropertySpec(0x29, "subscription_identifier_available", _B, frozenset({T.CONNACK})),
    PropertySpec(0x2A, "shared_subscription_available", _B, frozenset({T.CONNACK})),
)
SPECS_BY_ID: dict[int, PropertySpec] = {spec.identifier: spec for spec in PROPERTY_SPECS}
SPECS_BY_NAME: dict[str, PropertySpec] = {spec.name: spec for spec in PROPERTY_SPECS}
_USER_PROPERTY = SPECS_BY_ID[0x26]

# Byte properties whose only legal values are 0 and 1.
_BOOLEAN_BYTES = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
# Two- and four-byte properties for which 0 is a Protocol Error.
_NONZERO = {
    0x21: ReasonCode.PROTOCOL_ERROR,  # receive maximum
    0x27: ReasonCode.PROTOCOL_ERROR,  # maximum packet size
    0x23: ReasonCode.TOPIC_ALIAS_INVALID,  # topic alias
}


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Properties:
    """The properties of one MQTT 5 packet (or of a will). ``None`` or ``()`` means absent.

    Immutable, so one instance can be shared by every copy of a message.
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifier: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_property: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __repr__(self) -> str:
        fields_set = ", ".join(f"{name}={value!r}" for name, value in self.present().items())
        return f"Properties({fields_set})"

    def is_empty(self) -> bool:
        return self == EMPTY_PROPERTIES

    def present(self) -> dict[str, Any]:
        """The properties that are set, by name."""
        result: dict[str, Any] = {}
        for spec in PROPERTY_SPECS:
            value = getattr(self, spec.name)
            if value is not None and value != ():
                result[spec.name] = value
        return result


EMPTY_PROPERTIES = Properties()
assert [f.name for f in fields(Properties)] == [s.name for s in PROPERTY_SPECS]


def decode_properties(data: bytes, pos: int, packet_type: T) -> tuple[Properties, int]:
    """Decode a property block (length, then properties) at ``pos`` for ``packet_type``.

    Linear in the block's size: repeated properties are collected in lists and made tuples
    once at the end (a tuple rebuilt per repetition made 40,000 user properties cost seconds),
    and user properties, which a packet can carry by the hundred thousand, are sliced in a
    tight loop and decoded in one pass after it (``python -m bench.properties``).
    """
    length, pos = decode_vbi(data, pos)
    if length == 0:
        return EMPTY_PROPERTIES, pos
    end = pos + length
    if end > len(data):
        raise MalformedPacket("property length runs past the end of the packet")
    block = data[pos:end]
    values: dict[str, Any] = {}
    pairs: list[tuple[str, str]] = []
    add_pair = pairs.append
    subscription_ids: list[int] = []
    read_u16 = U16.unpack_from
    user_property_allowed = packet_type in _USER_PROPERTY.packets
    i = 0
    size = len(block)
    try:
        while i < size:
            identifier = block[i]
            if identifier == 0x26 and user_property_allowed:
                # Two length-prefixed strings. A length running past the block raises
                # struct.error, or (the value's) ends the loop with i > size.
                key_start = i + 3
                key_end = key_start + read_u16(block, i + 1)[0]
                value_start = key_end + 2
                i = value_start + read_u16(block, key_end)[0]
                key = block[key_start:key_end]
                value = block[value_start:i]
                # Strict UTF-8 has no overlong forms: U+0000 is exactly a zero byte.
                if 0 in key or 0 in value:
                    raise MalformedPacket("UTF-8 string contains U+0000")
                add_pair((key.decode(), value.decode()))
                continue
            i = _decode_one(block, i + 1, identifier, packet_type, values, subscription_ids)
    except struct.error:
        raise MalformedPacket("property user_property is truncated") from None
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"ill-formed UTF-8 string: {exc.reason}") from None
    if i > size:
        raise MalformedPacket("property user_property is truncated")
    if pairs:
        values["user_property"] = tuple(pairs)
    if subscription_ids:
        values["subscription_identifier"] = tuple(subscription_ids)
    return Properties(**values), end


def _decode_one(block: bytes, i: int, identifier: int, packet_type: T, values: dict[str, Any],
                subscription_ids: list[int]) -> int:
    """Decode the property ``identifier`` whose value starts at ``i`` into ``values`` (or
    ``subscription_ids``); return where the next property starts."""
    size = len(block)
    spec = SPECS_BY_ID.get(identifier)
    if spec is None:
        raise MalformedPacket(f"unknown property identifier 0x{identifier:02X}")
    if packet_type not in spec.packets:
        # Spec 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
        raise MalformedPacket(f"property {spec.name} is not allowed in {packet_type.name}")
    value: Any
    kind = spec.type
    if kind is _B:
        if i >= size:
            raise MalformedPacket(f"property {spec.name} is truncated")
        value = block[i]
        i += 1
        if identifier in _BOOLEAN_BYTES and value > 1:
            raise ProtocolError(f"property {spec.name} must be 0 or 1, not {value}")
    elif kind is _U16:
        if i + 2 > size:
            raise MalformedPacket(f"property {spec.name} is truncated")
        value = U16.unpack_from(block, i)[0]
        i += 2
    elif kind is _U32:
        if i + 4 > size:
            raise MalformedPacket(f"property {spec.name} is truncated")
        value = U32.unpack_from(block, i)[0]
        i += 4
    elif kind is _VBI:
        value, i = decode_vbi(block, i)
    else:
        raw, i = _read_block_bytes(block, i, spec.name)
        value = decode_utf8(raw) if kind is _STR else raw
    if identifier in _NONZERO and value == 0:
        raise ProtocolError(f"property {spec.name} must not be 0", _NONZERO[identifier])
    if identifier == 0x0B:
        if value == 0:
            raise ProtocolError("subscription identifier must not be 0")
        if subscription_ids and packet_type not in spec.repeatable_in:
            raise ProtocolError(f"property {spec.name} appears twice in {packet_type.name}")
        subscription_ids.append(value)
    elif spec.name in values:
        raise ProtocolError(f"property {spec.name} appears twice in {packet_type.name}")
    else:
        values[spec.name] = value
    return i


def _read_block_bytes(block: bytes, i: int, name: str) -> tuple[bytes, int]:
    if i + 2 > len(block):
        raise MalformedPacket(f"property {name} is truncated")
    length = U16.unpack_from(block, i)[0]
    start = i + 2
    end = start + length
    if end > len(block):
        raise MalformedPacket(f"property {name} is truncated")
    return block[start:end], end


def encode_properties(props: Properties, packet_type: T) -> bytes:
    """Encode ``props`` as a property block (length first) for ``packet_type``.

    Raises ``ValueError`` for a property the packet may not carry or a value out of range.
    """
    if props is EMPTY_PROPERTIES:
        return b"\x00"
    out = bytearray()
    for spec in PROPERTY_SPECS:
        value = getattr(props, spec.name)
        if value is None or value == ():
            continue
        if packet_type not in spec.packets:
            raise ValueError(f"property {spec.name} is not allowed in {packet_type.name}")
        if isinstance(value, tuple):
            if len(value) > 1 and packet_type not in spec.repeatable_in:
                raise ValueError(f"property {spec.name} may appear once in {packet_type.name}")
            for item in value:
                out.append(spec.identifier)
                out += _encode_value(spec, item)
        else:
            out.append(spec.identifier)
            out += _encode_value(spec, value)
    return encode_vbi(len(out)) + bytes(out)


def _encode_value(spec: PropertySpec, value: Any) -> bytes:
    kind = spec.type
    if kind is _B:
        if not 0 <= value <= 0xFF:
            raise ValueError(f"property {spec.name} out of range: {value}")
        return bytes((value,))
    if kind is _U16:
        if not 0 <= value <= MAX_UINT16:
            raise ValueError(f"property {spec.name} out of range: {value}")
        return U16.pack(value)
    if kind is _U32:
        if not 0 <= value <= MAX_UINT32:
            raise ValueError(f"property {spec.name} out of range: {value}")
        return U32.pack(value)
    if kind is _VBI:
        if not 1 <= value <= MAX_VBI:
            raise ValueError(f"property {spec.name} out of range: {value}")
        return encode_vbi(value)
    if kind is _STR:
        return encode_string(value)
    if kind is _BIN:
        return encode_binary(bytes(value))
    key, val = value
    return encode_string(key) + encode_string(val)
