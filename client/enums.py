"""paho-mqtt's ``paho.mqtt.enums``: the client's enumerations."""

from .constants import (
    CallbackAPIVersion,
    ConnackCode,
    LogLevel,
    MessageState,
    MessageType,
    MQTTErrorCode,
    MQTTProtocolVersion,
    PahoClientMode,
)

__all__ = ["CallbackAPIVersion", "ConnackCode", "LogLevel", "MQTTErrorCode",
           "MQTTProtocolVersion", "MessageState", "MessageType", "PahoClientMode"]
