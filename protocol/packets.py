"""One slotted dataclass per MQTT control packet. The decoder returns these and nothing else.

Fields are keyword-only. Reason codes are plain ``int`` (compare them with
:class:`~mqlite.protocol.reason_codes.ReasonCode`); in MQTT 3.1.1 they hold the return codes.
The classes are not frozen: a frozen dataclass's ``__init__`` costs about twice as much on the
PUBLISH hot path (see bench/NOTES.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .packet_types import PacketType
from .properties import EMPTY_PROPERTIES, Properties


@dataclass(slots=True, kw_only=True)
class Will:
    """The will message carried in CONNECT."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Connect:
    packet_type: ClassVar[PacketType] = PacketType.CONNECT
    client_id: str = ""
    # 3 (MQTT 3.1, protocol name "MQIsdp"), 4 (3.1.1) or 5; the protocol name follows from it.
    protocol_version: int = 4
    # Clean Session in 3.1.1, Clean Start in 5.0.
    clean_start: bool = True
    keep_alive: int = 60
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    properties: Properties = EMPTY_PROPERTIES
    # The top bit of the protocol level: a broker bridging to this one (mosquitto's
    # ``try_private``), which expects no echo of its own messages and retain as published.
    bridge: bool = False


@dataclass(slots=True, kw_only=True)
class Connack:
    packet_type: ClassVar[PacketType] = PacketType.CONNACK
    session_present: bool = False
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Publish:
    packet_type: ClassVar[PacketType] = PacketType.PUBLISH
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    # Present exactly when qos > 0.
    packet_id: int | None = None
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class _PublishAck:
    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Puback(_PublishAck):
    packet_type: ClassVar[PacketType] = PacketType.PUBACK


@dataclass(slots=True, kw_only=True)
class Pubrec(_PublishAck):
    packet_type: ClassVar[PacketType] = PacketType.PUBREC


@dataclass(slots=True, kw_only=True)
class Pubrel(_PublishAck):
    packet_type: ClassVar[PacketType] = PacketType.PUBREL


@dataclass(slots=True, kw_only=True)
class Pubcomp(_PublishAck):
    packet_type: ClassVar[PacketType] = PacketType.PUBCOMP


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """One topic filter of a SUBSCRIBE with its options (the last three are MQTT 5 only)."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(slots=True, kw_only=True)
class Subscribe:
    packet_type: ClassVar[PacketType] = PacketType.SUBSCRIBE
    packet_id: int
    subscriptions: list[Subscription] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Suback:
    packet_type: ClassVar[PacketType] = PacketType.SUBACK
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Unsubscribe:
    packet_type: ClassVar[PacketType] = PacketType.UNSUBSCRIBE
    packet_id: int
    topic_filters: list[str] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Unsuback:
    packet_type: ClassVar[PacketType] = PacketType.UNSUBACK
    packet_id: int
    # MQTT 5 only: MQTT 3.1.1 UNSUBACK carries no reason codes.
    reason_codes: list[int] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Pingreq:
    packet_type: ClassVar[PacketType] = PacketType.PINGREQ


@dataclass(slots=True, kw_only=True)
class Pingresp:
    packet_type: ClassVar[PacketType] = PacketType.PINGRESP


@dataclass(slots=True, kw_only=True)
class Disconnect:
    packet_type: ClassVar[PacketType] = PacketType.DISCONNECT
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Auth:
    """MQTT 5 only: enhanced authentication exchange."""

    packet_type: ClassVar[PacketType] = PacketType.AUTH
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


Packet = (
    Connect | Connack | Publish | Puback | Pubrec | Pubrel | Pubcomp | Subscribe | Suback
    | Unsubscribe | Unsuback | Pingreq | Pingresp | Disconnect | Auth
)
