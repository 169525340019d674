"""One slotted dataclass per MQTT control packet. The decoder returns these and nothing else.

Fields are keyword-only. Reason codes are plain ``int`` (compare them with
:class:`~mqlite.protocol.reason_codes.ReasonCode`); in MQTT 3.1.1 they hold the return codes.
The classes are not frozen: a frozen dataclass's ``__init__`` costs about twice as much on the
PUBLISH hot path (see bench/NOTES.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def packet_type(self) -> PacketType:
        return PacketType.CONNECT


@dataclass(slots=True, kw_only=True)
class Connack:
    session_present: bool = False
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.CONNACK


@dataclass(slots=True, kw_only=True)
class Publish:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    # Present exactly when qos > 0.
    packet_id: int | None = None
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.PUBLISH


@dataclass(slots=True, kw_only=True)
class _PublishAck:
    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True, kw_only=True)
class Puback(_PublishAck):

    @property
    def packet_type(self) -> PacketType:
        return PacketType.PUBACK


@dataclass(slots=True, kw_only=True)
class Pubrec(_PublishAck):

    @property
    def packet_type(self) -> PacketType:
        return PacketType.PUBREC


@dataclass(slots=True, kw_only=True)
class Pubrel(_PublishAck):

    @property
    def packet_type(self) -> PacketType:
        return PacketType.PUBREL


@dataclass(slots=True, kw_only=True)
class Pubcomp(_PublishAck):

    @property
    def packet_type(self) -> PacketType:
        return PacketType.PUBCOMP


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
    packet_id: int
    subscriptions: list[Subscription] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.SUBSCRIBE


@dataclass(slots=True, kw_only=True)
class Suback:
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.SUBACK


@dataclass(slots=True, kw_only=True)
class Unsubscribe:
    packet_id: int
    topic_filters: list[str] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.UNSUBSCRIBE


@dataclass(slots=True, kw_only=True)
class Unsuback:
    packet_id: int
    # MQTT 5 only: MQTT 3.1.1 UNSUBACK carries no reason codes.
    reason_codes: list[int] = field(default_factory=list)
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.UNSUBACK


@dataclass(slots=True, kw_only=True)
class Pingreq:
    @property
    def packet_type(self) -> PacketType:
        return PacketType.PINGREQ


@dataclass(slots=True, kw_only=True)
class Pingresp:
    @property
    def packet_type(self) -> PacketType:
        return PacketType.PINGRESP


@dataclass(slots=True, kw_only=True)
class Disconnect:
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.DISCONNECT


@dataclass(slots=True, kw_only=True)
class Auth:
    """MQTT 5 only: enhanced authentication exchange."""

    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES

    @property
    def packet_type(self) -> PacketType:
        return PacketType.AUTH


Packet = (
    Connect | Connack | Publish | Puback | Pubrec | Pubrel | Pubcomp | Subscribe | Suback
    | Unsubscribe | Unsuback | Pingreq | Pingresp | Disconnect | Auth
)
