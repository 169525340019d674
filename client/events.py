"""What the client's sans-IO session reports: one event per thing the application is to hear
about, in the order it happened. ``Client`` turns each into its paho callback."""

from __future__ import annotations

from dataclasses import dataclass

from mqlite.protocol import MQTTError, Packet
from mqlite.protocol import Properties as WireProperties

from .constants import MQTTErrorCode
from .message import MQTTMessage, MQTTMessageInfo
from .mqtt5_types import ConnectFlags, Properties, ReasonCode


@dataclass(slots=True)
class Connected:
    """A CONNACK came (accepted or not): ``on_connect``. When accepted, the shell then calls
    ``ClientSession.resume()`` to send what waited."""

    flags: ConnectFlags
    reason: ReasonCode
    properties: Properties | None
    accepted: bool
    return_code: int  # as the CONNACK gave it (MQTT 3.1.1's for callback API VERSION1)


@dataclass(slots=True)
class MessageReceived:
    """A message to deliver, then to acknowledge with ``ack_qos`` (0: nothing to send)."""

    message: MQTTMessage
    ack_qos: int


@dataclass(slots=True)
class PublishCompleted:
    """An outgoing flow ended (PUBACK, PUBCOMP, a refusing PUBREC), or a QoS 0 message was
    written: ``on_publish``."""

    info: MQTTMessageInfo
    reason_code: int
    properties: WireProperties
    packet_type: int


@dataclass(slots=True)
class RequestAcknowledged:
    """SUBACK (``on_subscribe``) or UNSUBACK (``on_unsubscribe``)."""

    subscribe: bool
    mid: int
    reasons: list[ReasonCode]
    properties: Properties | None


@dataclass(slots=True)
class ConnectionEnds:
    """The connection is to be closed: refused CONNACK, a DISCONNECT from the broker, a
    keepalive timeout, or a written DISCONNECT of ours."""

    rc: MQTTErrorCode
    reason_code: int | None = None
    from_server: bool = False
    properties: WireProperties | None = None


@dataclass(slots=True)
class Reauthenticated:
    """A re-authentication ended with the broker's AUTH 0x00 (and its proof checked):
    ``on_auth``."""

    properties: Properties | None


@dataclass(slots=True)
class ProtocolViolated:
    """The broker broke the protocol: DISCONNECT (MQTT 5) and close."""

    error: MQTTError


@dataclass(slots=True)
class Relayed:
    """Relay mode (``Client.relay_set``): a PUBLISH, or an acknowledgement of a flow this
    client did not start, handed to the relay as it came, unanswered."""

    packet: Packet


Event = (Connected | MessageReceived | PublishCompleted | RequestAcknowledged | ConnectionEnds
         | Reauthenticated | ProtocolViolated | Relayed)

