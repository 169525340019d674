"""Control packet types (spec 2.1.2) and protocol levels."""

from __future__ import annotations

from enum import IntEnum


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15
    # Not a packet: the will properties inside CONNECT, which allow their own set.
    WILL = 0


class ProtocolVersion(IntEnum):
    """The protocol level byte of CONNECT."""

    MQTT_3_1 = 3
    MQTT_3_1_1 = 4
    MQTT_5 = 5


MQTT_3_1 = ProtocolVersion.MQTT_3_1
MQTT_3_1_1 = ProtocolVersion.MQTT_3_1_1
MQTT_5 = ProtocolVersion.MQTT_5
