"""paho-mqtt's ``paho.mqtt.packettypes``."""

from .mqtt5_types import PacketTypes

__all__ = ["PacketTypes"]
