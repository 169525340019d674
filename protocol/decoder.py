"""Decode one complete packet body into a packet object (sans-IO).

Raises only :class:`~mqlite.protocol.errors.MQTTError` subclasses, with the reason code a server
should answer with. Checks everything that needs no session state: fixed-header flags, lengths,
UTF-8, packet identifier 0, QoS 3, property placement and duplicates, reason codes, topic names.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import (
    InvalidTopic,
    MalformedPacket,
    MQTTError,
    ProtocolError,
    UnsupportedProtocolVersion,
)
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
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from .properties import EMPTY_PROPERTIES, Properties, decode_properties
from .reason_codes import (
    AUTH_REASON_CODES,
    CONNACK_REASON_CODES,
    CONNACK_RETURN_CODES_V3,
    DISCONNECT_REASON_CODES,
    PUBACK_REASON_CODES,
    PUBREL_REASON_CODES,
    SUBACK_REASON_CODES,
    SUBACK_RETURN_CODES_V3,
    UNSUBACK_REASON_CODES,
    ReasonCode,
)
from .topics import DEFAULT_MAX_TOPIC_LEVELS, validate_topic_name
from .wire import U16, decode_utf8, read_binary, read_string, read_u8, read_u16

Decoder = Callable[[int, bytes, int, int], Packet]

# (protocol name, level) pairs this core speaks.
_PROTOCOLS = {("MQTT", 5), ("MQTT", 4), ("MQIsdp", 3)}


def decode_packet(
    first_byte: int, body: bytes, version: int, max_topic_levels: int = DEFAULT_MAX_TOPIC_LEVELS
) -> Packet:
    """Decode the packet whose fixed header's first byte is ``first_byte`` and whose variable
    header and payload are ``body``, for protocol level ``version`` (3, 4 or 5)."""
    packet_type = first_byte >> 4
    flags = first_byte & 0x0F
    if packet_type == T.PUBLISH:
        return _decode_publish(flags, body, version, max_topic_levels)
    decoder = _DECODERS[packet_type]
    if decoder is None or (packet_type == T.AUTH and version < 5):
        raise MalformedPacket(f"reserved packet type {packet_type}")
    required = 0b0010 if packet_type in _FLAGS_0010 else 0
    # MQTT 3.1 sets DUP on a resent PUBREL, SUBSCRIBE or UNSUBSCRIBE (they were QoS 1 there).
    if flags != required and not (version == 3 and required and flags == 0b1010):
        raise MalformedPacket(
            f"{T(packet_type).name} fixed header flags must be {required:04b}, not {flags:04b}"
        )
    return decoder(flags, body, version, max_topic_levels)


_FLAGS_0010 = frozenset({T.PUBREL, T.SUBSCRIBE, T.UNSUBSCRIBE})


def _packet_id(body: bytes, pos: int) -> int:
    packet_id = read_u16(body, pos)
    if packet_id == 0:
        raise ProtocolError("packet identifier 0 is not allowed")
    return packet_id


def _end(body: bytes, pos: int, name: str) -> None:
    if pos != len(body):
        raise MalformedPacket(f"{name} has {len(body) - pos} unexpected trailing bytes")


def _decode_publish(flags: int, body: bytes, version: int, max_topic_levels: int) -> Publish:
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    dup = bool(flags & 8)
    if dup and not qos:
        raise ProtocolError("PUBLISH with QoS 0 must not set DUP")
    if len(body) < 2:
        raise MalformedPacket("PUBLISH too short for its topic length")
    end = 2 + U16.unpack_from(body, 0)[0]
    if end > len(body):
        raise MalformedPacket("PUBLISH topic length runs past the end of the packet")
    topic = decode_utf8(body[2:end])
    packet_id = None
    if qos:
        packet_id = _packet_id(body, end)
        end += 2
    properties = EMPTY_PROPERTIES
    if version == 5:
        # Most PUBLISHes carry no properties: a single 0 length byte.
        if end < len(body) and body[end] == 0:
            end += 1
        else:
            properties, end = decode_properties(body, end, T.PUBLISH)
    if topic:
        # The common topic passes these two cheap checks; only then pay for the full one.
        if "+" in topic or "#" in topic or topic.count("/") >= max_topic_levels:
            validate_topic_name(topic, max_topic_levels)
    elif version < 5 or properties.topic_alias is None:
        raise ProtocolError("PUBLISH with an empty topic and no topic alias")
    return Publish(
        topic=topic,
        payload=body[end:],
        qos=qos,
        retain=bool(flags & 1),
        dup=dup,
        packet_id=packet_id,
        properties=properties,
    )


def _decode_connect(flags: int, body: bytes, version: int, max_topic_levels: int) -> Connect:
    name, pos = read_string(body, 0)
    raw_level = read_u8(body, pos)
    # A bridge sets the level's top bit (mosquitto's try_private): 0x83, 0x84.
    level = raw_level & 0x7F
    if (name, level) not in _PROTOCOLS:
        raise UnsupportedProtocolVersion(
            f"unsupported protocol {name!r} level {raw_level}", protocol_name=name,
            protocol_level=raw_level,
        )
    try:
        return _decode_connect_fields(body, pos + 1, level, max_topic_levels,
                                      bridge=bool(raw_level & 0x80))
    except MQTTError as exc:
        exc.protocol_version = level
        raise


def _decode_connect_fields(body: bytes, pos: int, level: int, max_topic_levels: int,
                           bridge: bool) -> Connect:
    # One pass over the fields in wire order, each present or not by the flags read first:
    # split up, the flags and the read position would have to travel between the parts.
    connect_flags = read_u8(body, pos)
    will_flag = bool(connect_flags & 0x04)
    will_qos = (connect_flags >> 3) & 3
    will_retain = bool(connect_flags & 0x20)
    has_password = bool(connect_flags & 0x40)
    has_username = bool(connect_flags & 0x80)
    if will_qos == 3:
        raise MalformedPacket("CONNECT will QoS 3")
    if level == 3:
        # MQTT 3.1 reserves neither the flags' bit 0 nor the will bits without a will (as
        # mosquitto reads it): old devices set them, and they mean nothing.
        if not will_flag:
            will_qos, will_retain = 0, False
    elif connect_flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag is set")
    elif not will_flag and (will_qos or will_retain):
        raise MalformedPacket("CONNECT will QoS or retain set without the will flag")
    if level < 5 and has_password and not has_username:
        raise MalformedPacket("CONNECT password flag set without the user name flag")
    keep_alive = read_u16(body, pos + 1)
    pos += 3
    properties = EMPTY_PROPERTIES
    if level == 5:
        properties, pos = decode_properties(body, pos, T.CONNECT)
    client_id, pos = read_string(body, pos)
    will = None
    if will_flag:
        will_properties = EMPTY_PROPERTIES
        if level == 5:
            will_properties, pos = decode_properties(body, pos, T.WILL)
        will_topic, pos = read_string(body, pos)
        try:
            validate_topic_name(will_topic, max_topic_levels)
        except InvalidTopic as exc:
            raise InvalidTopic(f"will {exc}", ReasonCode.TOPIC_NAME_INVALID) from None
        will_payload, pos = read_binary(body, pos)
        will = Will(
            topic=will_topic,
            payload=will_payload,
            qos=will_qos,
            retain=will_retain,
            properties=will_properties,
        )
    username = None
    if has_username:
        username, pos = read_string(body, pos)
    password = None
    if has_password:
        password, pos = read_binary(body, pos)
    _end(body, pos, "CONNECT")
    return Connect(
        client_id=client_id,
        protocol_version=level,
        clean_start=bool(connect_flags & 0x02),
        keep_alive=keep_alive,
        will=will,
        username=username,
        password=password,
        properties=properties,
        bridge=bridge,
    )


def _decode_connack(flags: int, body: bytes, version: int, max_topic_levels: int) -> Connack:
    ack_flags = read_u8(body, 0)
    if ack_flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags are set")
    code = read_u8(body, 1)
    if version == 5 and len(body) == 2 and code == 1:
        # An MQTT 3.1.1 broker's "unacceptable protocol version" to an MQTT 5 CONNECT: the
        # MQTT 5 refusal of the same meaning, 0x84, so a client can fall back to 3.1.1.
        return Connack(session_present=False, reason_code=0x84)
    allowed = CONNACK_REASON_CODES if version == 5 else CONNACK_RETURN_CODES_V3
    if code not in allowed:
        raise ProtocolError(f"CONNACK code 0x{code:02X} is not defined")
    session_present = bool(ack_flags)
    if session_present and code:
        raise ProtocolError("a refusing CONNACK must not set session present")
    properties = EMPTY_PROPERTIES
    pos = 2
    if version == 5:
        properties, pos = decode_properties(body, pos, T.CONNACK)
    _end(body, pos, "CONNACK")
    return Connack(session_present=session_present, reason_code=code, properties=properties)


def _ack_decoder(
    cls: type[Puback | Pubrec | Pubrel | Pubcomp], packet_type: T, codes: frozenset[int]
) -> Decoder:
    name = packet_type.name

    def decode(flags: int, body: bytes, version: int, max_topic_levels: int) -> Packet:
        packet_id = _packet_id(body, 0)
        size = len(body)
        if version < 5 or size == 2:
            _end(body, 2, name)
            return cls(packet_id=packet_id)
        code = body[2]
        if code not in codes:
            raise ProtocolError(f"{name} reason code 0x{code:02X} is not defined")
        properties = EMPTY_PROPERTIES
        pos = 3
        if size > 3:
            properties, pos = decode_properties(body, 3, packet_type)
        _end(body, pos, name)
        return cls(packet_id=packet_id, reason_code=code, properties=properties)

    return decode


def _v5_properties(body: bytes, pos: int, version: int, packet_type: T) -> tuple[Properties, int]:
    if version == 5:
        return decode_properties(body, pos, packet_type)
    return EMPTY_PROPERTIES, pos


def _decode_subscribe(flags: int, body: bytes, version: int, max_topic_levels: int) -> Subscribe:
    packet_id = _packet_id(body, 0)
    properties, pos = _v5_properties(body, 2, version, T.SUBSCRIBE)
    reserved = 0xC0 if version == 5 else 0xFC
    subscriptions = []
    while pos < len(body):
        topic_filter, pos = read_string(body, pos)
        if not topic_filter:  # [MQTT-4.7.3-1]: not a filter that fails, a broken packet
            raise ProtocolError("SUBSCRIBE with an empty topic filter")
        options = read_u8(body, pos)
        pos += 1
        if options & reserved:
            raise MalformedPacket("SUBSCRIBE options use reserved bits")
        qos = options & 3
        retain_handling = (options >> 4) & 3
        if qos == 3:
            raise MalformedPacket("SUBSCRIBE requests QoS 3")
        if retain_handling == 3:
            raise MalformedPacket("SUBSCRIBE retain handling 3")
        no_local = bool(options & 4)
        if no_local and topic_filter.startswith("$share/"):
            raise ProtocolError("No Local on a shared subscription")
        subscriptions.append(
            Subscription(
                topic_filter=topic_filter,
                qos=qos,
                no_local=no_local,
                retain_as_published=bool(options & 8),
                retain_handling=retain_handling,
            )
        )
    if not subscriptions:
        raise ProtocolError("SUBSCRIBE with no topic filter")
    return Subscribe(packet_id=packet_id, subscriptions=subscriptions, properties=properties)


def _decode_suback(flags: int, body: bytes, version: int, max_topic_levels: int) -> Suback:
    packet_id = _packet_id(body, 0)
    properties, pos = _v5_properties(body, 2, version, T.SUBACK)
    codes = list(body[pos:])
    if not codes:
        raise ProtocolError("SUBACK with no reason code")
    allowed = SUBACK_REASON_CODES if version == 5 else SUBACK_RETURN_CODES_V3
    for code in codes:
        if code not in allowed:
            raise ProtocolError(f"SUBACK code 0x{code:02X} is not defined")
    return Suback(packet_id=packet_id, reason_codes=codes, properties=properties)


def _decode_unsubscribe(
    flags: int, body: bytes, version: int, max_topic_levels: int
) -> Unsubscribe:
    packet_id = _packet_id(body, 0)
    properties, pos = _v5_properties(body, 2, version, T.UNSUBSCRIBE)
    filters = []
    while pos < len(body):
        topic_filter, pos = read_string(body, pos)
        if not topic_filter:  # [MQTT-4.7.3-1]
            raise ProtocolError("UNSUBSCRIBE with an empty topic filter")
        filters.append(topic_filter)
    if not filters:
        raise ProtocolError("UNSUBSCRIBE with no topic filter")
    return Unsubscribe(packet_id=packet_id, topic_filters=filters, properties=properties)


def _decode_unsuback(flags: int, body: bytes, version: int, max_topic_levels: int) -> Unsuback:
    packet_id = _packet_id(body, 0)
    if version < 5:
        _end(body, 2, "UNSUBACK")
        return Unsuback(packet_id=packet_id)
    properties, pos = decode_properties(body, 2, T.UNSUBACK)
    codes = list(body[pos:])
    if not codes:
        raise ProtocolError("UNSUBACK with no reason code")
    for code in codes:
        if code not in UNSUBACK_REASON_CODES:
            raise ProtocolError(f"UNSUBACK reason code 0x{code:02X} is not defined")
    return Unsuback(packet_id=packet_id, reason_codes=codes, properties=properties)


def _decode_pingreq(flags: int, body: bytes, version: int, max_topic_levels: int) -> Pingreq:
    _end(body, 0, "PINGREQ")
    return Pingreq()


def _decode_pingresp(flags: int, body: bytes, version: int, max_topic_levels: int) -> Pingresp:
    _end(body, 0, "PINGRESP")
    return Pingresp()


def _reason_and_properties(
    body: bytes, version: int, packet_type: T, codes: frozenset[int]
) -> tuple[int, Properties]:
    """DISCONNECT and AUTH: an empty body means 0 and no properties (spec 3.14.2.1, 3.15.2.1)."""
    if version < 5 or not body:
        _end(body, 0, packet_type.name)
        return 0, EMPTY_PROPERTIES
    code = body[0]
    if code not in codes:
        raise ProtocolError(f"{packet_type.name} reason code 0x{code:02X} is not defined")
    properties = EMPTY_PROPERTIES
    pos = 1
    if len(body) > 1:
        properties, pos = decode_properties(body, 1, packet_type)
        if properties is EMPTY_PROPERTIES:  # present but empty, told apart from absent
            properties = Properties()  # (paho's callback API VERSION1 tells them apart)
    _end(body, pos, packet_type.name)
    return code, properties


def _decode_disconnect(
    flags: int, body: bytes, version: int, max_topic_levels: int
) -> Disconnect:
    code, properties = _reason_and_properties(body, version, T.DISCONNECT, DISCONNECT_REASON_CODES)
    return Disconnect(reason_code=code, properties=properties)


def _decode_auth(flags: int, body: bytes, version: int, max_topic_levels: int) -> Auth:
    code, properties = _reason_and_properties(body, version, T.AUTH, AUTH_REASON_CODES)
    return Auth(reason_code=code, properties=properties)


_DECODERS: list[Decoder | None] = [
    None,  # 0 is reserved
    _decode_connect,
    _decode_connack,
    _decode_publish,
    _ack_decoder(Puback, T.PUBACK, PUBACK_REASON_CODES),
    _ack_decoder(Pubrec, T.PUBREC, PUBACK_REASON_CODES),
    _ack_decoder(Pubrel, T.PUBREL, PUBREL_REASON_CODES),
    _ack_decoder(Pubcomp, T.PUBCOMP, PUBREL_REASON_CODES),
    _decode_subscribe,
    _decode_suback,
    _decode_unsubscribe,
    _decode_unsuback,
    _decode_pingreq,
    _decode_pingresp,
    _decode_disconnect,
    _decode_auth,
]
