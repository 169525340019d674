"""The protocol core's errors. Each carries the MQTT 5 reason code a peer should be answered with.

``decode`` and :class:`~mqlite.protocol.framing.PacketReader` raise only :class:`MQTTError`
subclasses; anything else escaping them is a bug.
"""

from __future__ import annotations

from typing import ClassVar

from .reason_codes import ReasonCode


class MQTTError(Exception):
    """Base of every error the protocol core raises on bad input."""

    default_reason: ClassVar[ReasonCode] = ReasonCode.UNSPECIFIED_ERROR

    def __init__(self, message: str, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        self.reason_code: ReasonCode = reason_code if reason_code is not None else (
            self.default_reason
        )
        # Set when the error arises while decoding a CONNECT whose protocol level is known, so
        # a server can answer with a CONNACK in the client's version.
        self.protocol_version: int | None = None


class MalformedPacket(MQTTError):
    """The bytes do not form a packet the spec allows (reason code 0x81)."""

    default_reason: ClassVar[ReasonCode] = ReasonCode.MALFORMED_PACKET


class ProtocolError(MQTTError):
    """A well-formed packet that the spec forbids here (reason code 0x82, or a finer one)."""

    default_reason: ClassVar[ReasonCode] = ReasonCode.PROTOCOL_ERROR


class PacketTooLarge(MQTTError):
    """The fixed header announces a packet over the configured maximum (reason code 0x95)."""

    default_reason: ClassVar[ReasonCode] = ReasonCode.PACKET_TOO_LARGE


class UnsupportedProtocolVersion(MQTTError):
    """CONNECT names a protocol or level this core does not speak (reason code 0x84).

    A 3.1.1 server answers CONNACK return code 1; a 5.0 server may answer reason code 0x84.
    """

    default_reason: ClassVar[ReasonCode] = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION

    def __init__(self, message: str, protocol_name: str, protocol_level: int) -> None:
        super().__init__(message)
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level


class InvalidTopic(MQTTError):
    """A topic name or filter breaks the topic rules (spec 4.7)."""

    default_reason: ClassVar[ReasonCode] = ReasonCode.TOPIC_NAME_INVALID


class PacketIdsExhausted(Exception):
    """Every packet identifier of a session is in flight: nothing more may be sent until acks."""
