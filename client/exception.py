"""paho-mqtt's ``paho.mqtt.exception``."""


class MQTTException(Exception):
    """An MQTT error of the client's helpers (a malformed packet, a bad subscription option)."""


class MalformedPacket(MQTTException):
    """What the broker sent cannot be decoded."""
