"""paho-mqtt's ``paho.mqtt.properties``: MQTT 5 properties, and the variable byte integers of
the wire format."""

from __future__ import annotations

from mqlite.protocol import MQTTError
from mqlite.protocol.wire import decode_vbi, encode_vbi

from .exception import MalformedPacket
from .mqtt5_types import PacketTypes, Properties


class VariableByteIntegers:
    """MQTT's variable byte integers (1 to 4 bytes, spec 1.5.5)."""

    @staticmethod
    def encode(value: int) -> bytes:
        return encode_vbi(value)

    @staticmethod
    def decode(buffer: bytes | bytearray) -> tuple[int, int]:
        """(value, bytes used); MalformedPacket past 4 bytes or the end of ``buffer``."""
        try:
            value, used = decode_vbi(bytes(buffer), 0)
        except MQTTError as exc:
            raise MalformedPacket(str(exc)) from None
        return value, used


__all__ = ["MalformedPacket", "PacketTypes", "Properties", "VariableByteIntegers"]
