"""paho-mqtt's MQTT 5 helper types: ``ReasonCode``, ``Properties``, ``PacketTypes``,
``SubscribeOptions`` and the callback flags, with the same names, attributes and comparisons, so
code that builds or inspects them ports unchanged. They convert to and from the protocol core's
own types at the edge of the client.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from mqlite.protocol import EMPTY_PROPERTIES, PROPERTY_SPECS, MQTTError
from mqlite.protocol import PacketType as WirePacketType
from mqlite.protocol import Properties as WireProperties
from mqlite.protocol.properties import decode_properties, encode_properties

from .exception import MalformedPacket


class PacketTypes:
    """Packet type numbers; ``WILLMESSAGE`` is the pseudo-type of a will's properties."""

    indexes = range(1, 16)
    (CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE,
     UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH) = indexes
    WILLMESSAGE = 99
    Names = ("reserved", "Connect", "Connack", "Publish", "Puback", "Pubrec", "Pubrel",
             "Pubcomp", "Subscribe", "Suback", "Unsubscribe", "Unsuback", "Pingreq", "Pingresp",
             "Disconnect", "Auth")


_P = PacketTypes
_ERRORS_COMMON = [_P.CONNACK, _P.PUBACK, _P.PUBREC, _P.SUBACK, _P.UNSUBACK, _P.DISCONNECT]
# value -> {name: packet types that use that name for it} (MQTT 5.0 table 2-6).
_REASON_NAMES: dict[int, dict[str, list[int]]] = {
    0: {"Success": [_P.CONNACK, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP, _P.UNSUBACK,
                    _P.AUTH],
        "Normal disconnection": [_P.DISCONNECT], "Granted QoS 0": [_P.SUBACK]},
    1: {"Granted QoS 1": [_P.SUBACK]},
    2: {"Granted QoS 2": [_P.SUBACK]},
    4: {"Disconnect with will message": [_P.DISCONNECT]},
    16: {"No matching subscribers": [_P.PUBACK, _P.PUBREC]},
    17: {"No subscription found": [_P.UNSUBACK]},
    24: {"Continue authentication": [_P.AUTH]},
    25: {"Re-authenticate": [_P.AUTH]},
    128: {"Unspecified error": _ERRORS_COMMON},
    129: {"Malformed packet": [_P.CONNACK, _P.DISCONNECT]},
    130: {"Protocol error": [_P.CONNACK, _P.DISCONNECT]},
    131: {"Implementation specific error": _ERRORS_COMMON},
    132: {"Unsupported protocol version": [_P.CONNACK]},
    133: {"Client identifier not valid": [_P.CONNACK]},
    134: {"Bad user name or password": [_P.CONNACK]},
    135: {"Not authorized": _ERRORS_COMMON},
    136: {"Server unavailable": [_P.CONNACK]},
    137: {"Server busy": [_P.CONNACK, _P.DISCONNECT]},
    138: {"Banned": [_P.CONNACK]},
    139: {"Server shutting down": [_P.DISCONNECT]},
    140: {"Bad authentication method": [_P.CONNACK, _P.DISCONNECT]},
    141: {"Keep alive timeout": [_P.DISCONNECT]},
    142: {"Session taken over": [_P.DISCONNECT]},
    143: {"Topic filter invalid": [_P.SUBACK, _P.UNSUBACK, _P.DISCONNECT]},
    144: {"Topic name invalid": [_P.CONNACK, _P.PUBACK, _P.PUBREC, _P.DISCONNECT]},
    145: {"Packet identifier in use": [_P.PUBACK, _P.PUBREC, _P.SUBACK, _P.UNSUBACK]},
    146: {"Packet identifier not found": [_P.PUBREL, _P.PUBCOMP]},
    147: {"Receive maximum exceeded": [_P.DISCONNECT]},
    148: {"Topic alias invalid": [_P.DISCONNECT]},
    149: {"Packet too large": [_P.CONNACK, _P.DISCONNECT]},
    150: {"Message rate too high": [_P.DISCONNECT]},
    151: {"Quota exceeded": [_P.CONNACK, _P.PUBACK, _P.PUBREC, _P.SUBACK, _P.DISCONNECT]},
    152: {"Administrative action": [_P.DISCONNECT]},
    153: {"Payload format invalid": [_P.PUBACK, _P.PUBREC, _P.DISCONNECT]},
    154: {"Retain not supported": [_P.CONNACK, _P.DISCONNECT]},
    155: {"QoS not supported": [_P.CONNACK, _P.DISCONNECT]},
    156: {"Use another server": [_P.CONNACK, _P.DISCONNECT]},
    157: {"Server moved": [_P.CONNACK, _P.DISCONNECT]},
    158: {"Shared subscription not supported": [_P.SUBACK, _P.DISCONNECT]},
    159: {"Connection rate exceeded": [_P.CONNACK, _P.DISCONNECT]},
    160: {"Maximum connect time": [_P.DISCONNECT]},
    161: {"Subscription identifiers not supported": [_P.SUBACK, _P.DISCONNECT]},
    162: {"Wildcard subscription not supported": [_P.SUBACK, _P.DISCONNECT]},
}


@functools.total_ordering
class ReasonCode:
    """An MQTT 5 reason code of one packet type. Equal to its number and to its name."""

    names = _REASON_NAMES

    def __init__(self, packetType: int, aName: str = "Success", identifier: int = -1) -> None:
        self.packetType = packetType
        if identifier == -1:
            self.value = self.getId(aName)
        else:
            if identifier not in _REASON_NAMES:
                raise KeyError(identifier)
            self.value = identifier

    def getId(self, name: str) -> int:
        for code, names in _REASON_NAMES.items():
            if self.packetType in names.get(name, ()):
                return code
        # Some names serve packet types the table omits (paho uses DISCONNECT "Success").
        for code, names in _REASON_NAMES.items():
            if name in names:
                return code
        raise KeyError(f"Reason code name not found: {name}")

    def set(self, name: str) -> None:
        self.value = self.getId(name)

    def getName(self) -> str:
        names = _REASON_NAMES.get(self.value, {})
        for name, packet_types in names.items():
            if self.packetType in packet_types:
                return name
        return next(iter(names), f"Reason code {self.value}")

    @property
    def is_failure(self) -> bool:
        return self.value >= 0x80

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReasonCode):
            return self.value == other.value
        if isinstance(other, int):
            return self.value == other
        if isinstance(other, str):
            return other == self.getName()
        return False

    def __lt__(self, other: object) -> bool:
        if isinstance(other, ReasonCode):
            return self.value < other.value
        if isinstance(other, int):
            return self.value < other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __int__(self) -> int:
        return self.value

    def __str__(self) -> str:
        return self.getName()

    def __repr__(self) -> str:
        packet = PacketTypes.Names[self.packetType] if self.packetType < 16 else "Will"
        return f"ReasonCode({packet}, {self.getName()!r})"

    def json(self) -> str:
        return self.getName()

    def pack(self) -> bytearray:
        return bytearray([self.value])


def reason(packet_type: int, value: int) -> ReasonCode:
    """A ReasonCode for a number received on the wire, known to the table or not."""
    code = ReasonCode(packet_type)
    code.value = value
    return code


# MQTT 3.1.1 CONNACK return codes as MQTT 5 reason codes, as paho reports them.
V3_CONNACK_REASONS = {0: 0x00, 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


class ConnectFlags(NamedTuple):
    session_present: bool


class DisconnectFlags(NamedTuple):
    is_disconnect_packet_from_server: bool


# "Message Expiry Interval" -> ("MessageExpiryInterval", "message_expiry_interval").
_DISPLAY_NAMES = {
    spec.name: "".join(
        "QoS" if word == "qos" else word.capitalize() for word in spec.name.split("_")
    )
    for spec in PROPERTY_SPECS
}
_SNAKE_NAMES = {camel: snake for snake, camel in _DISPLAY_NAMES.items()}
_SPEC_PACKETS = {
    spec.name: {PacketTypes.WILLMESSAGE if int(t) == 0 else int(t) for t in spec.packets}
    for spec in PROPERTY_SPECS
}
_MULTIPLE = {"UserProperty", "SubscriptionIdentifier"}


class Properties:
    """MQTT 5 properties for one packet type, set as attributes named like
    ``MessageExpiryInterval``. ``UserProperty`` and ``SubscriptionIdentifier`` collect lists:
    assigning a single value appends it, as in paho-mqtt."""

    packetType: int

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)

    def __setattr__(self, name: str, value: Any) -> None:
        name = name.replace(" ", "")
        snake = _SNAKE_NAMES.get(name)
        if snake is None:
            raise AttributeError(f"Property name must be one of {sorted(_SNAKE_NAMES)}")
        packet_type: int = object.__getattribute__(self, "packetType")
        if packet_type not in _SPEC_PACKETS[snake]:
            raise ValueError(f"Property {name} does not apply to packet type {packet_type}")
        if name in _MULTIPLE:
            items = value if isinstance(value, list) else [value]
            value = list(self.__dict__.get(name, [])) + items
        object.__setattr__(self, name, value)

    def isEmpty(self) -> bool:
        return not any(key in _SNAKE_NAMES for key in self.__dict__)

    def pack(self) -> bytes:
        """The property block as MQTT 5 puts it in a packet: its length, then the
        properties."""
        return encode_properties(to_wire(self), _wire_type(self.packetType))

    def unpack(self, buffer: bytes | bytearray) -> tuple[Properties, int]:
        """Read a property block (length first) into this object; (self, bytes used).
        MalformedPacket if the bytes do not form one."""
        try:
            wire, used = decode_properties(bytes(buffer), 0, _wire_type(self.packetType))
        except MQTTError as exc:
            raise MalformedPacket(str(exc)) from None
        decoded = from_wire(self.packetType, wire)
        for name, value in decoded.__dict__.items():
            if name in _SNAKE_NAMES:
                object.__setattr__(self, name, value)
        return self, used

    def clear(self) -> None:
        for key in [key for key in self.__dict__ if key in _SNAKE_NAMES]:
            delattr(self, key)

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for snake, camel in _DISPLAY_NAMES.items():
            if camel in self.__dict__:
                value = self.__dict__[camel]
                data[camel] = value.hex() if snake == "correlation_data" else value
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Properties):
            return NotImplemented
        return self.json() == other.json()

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return "[" + ", ".join(f"{key} : {value}" for key, value in self.json().items()) + "]"

    __repr__ = __str__


def _wire_type(packet_type: int) -> WirePacketType:
    return WirePacketType.WILL if packet_type == PacketTypes.WILLMESSAGE \
        else WirePacketType(packet_type)


def to_wire(props: Properties | None) -> WireProperties:
    """The protocol core's properties for paho-style ``props`` (None means none)."""
    if props is None:
        return EMPTY_PROPERTIES
    values: dict[str, Any] = {}
    for camel, value in props.__dict__.items():
        snake = _SNAKE_NAMES.get(camel)
        if snake is None:
            continue
        if camel in _MULTIPLE:
            value = tuple(tuple(v) if camel == "UserProperty" else v for v in value)
        elif snake == "correlation_data" and isinstance(value, str):
            value = value.encode()
        values[snake] = value
    return WireProperties(**values) if values else EMPTY_PROPERTIES


def from_wire(packet_type: int, props: WireProperties) -> Properties:
    """paho-style properties holding what the protocol core decoded."""
    result = Properties(packet_type)
    if props is EMPTY_PROPERTIES:
        return result
    for snake, value in props.present().items():
        camel = _DISPLAY_NAMES[snake]
        object.__setattr__(result, camel, list(value) if camel in _MULTIPLE else value)
    return result


class SubscribeOptions:
    """MQTT 5 subscription options, with paho-mqtt's attribute names."""

    RETAIN_SEND_ON_SUBSCRIBE, RETAIN_SEND_IF_NEW_SUB, RETAIN_DO_NOT_SEND = range(3)

    def __init__(
        self,
        qos: int = 0,
        noLocal: bool = False,
        retainAsPublished: bool = False,
        retainHandling: int = RETAIN_SEND_ON_SUBSCRIBE,
    ) -> None:
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS should be 0, 1 or 2, not {qos}")
        if retainHandling not in (0, 1, 2):
            raise ValueError(f"Retain handling should be 0, 1 or 2, not {retainHandling}")
        self.QoS = qos
        self.noLocal = noLocal
        self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling

    def __repr__(self) -> str:
        return (f"SubscribeOptions(qos={self.QoS}, noLocal={self.noLocal}, "
                f"retainAsPublished={self.retainAsPublished}, "
                f"retainHandling={self.retainHandling})")
