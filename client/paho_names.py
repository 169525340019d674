"""Names paho-mqtt's client module exports that programs import even when they use little of
them: its typing aliases, its error types, and its conversions of MQTT 3.1.1 codes to MQTT 5
reason codes. Without them a ported program stops at its import line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from .constants import ConnackCode, MQTTErrorCode
from .exception import MQTTException
from .message import MQTTMessage
from .mqtt5_types import PacketTypes, ReasonCode
from .websocket import WebSocketError

PayloadType = str | bytes | bytearray | int | float | None
HTTPHeader = dict[str, str]
WebSocketHeaders = Callable[[HTTPHeader], HTTPHeader] | HTTPHeader
CleanStartOption = bool | Literal[3]
SocketLike = Any

# Callbacks, as paho types them (VERSION1 and VERSION2 shapes alike).
CallbackOnConnect = Callable[..., None]
CallbackOnConnectFail = Callable[[Any, Any], None]
CallbackOnDisconnect = Callable[..., None]
CallbackOnLog = Callable[[Any, Any, int, str], None]
CallbackOnMessage = Callable[[Any, Any, MQTTMessage], None]
CallbackOnPreConnect = Callable[[Any, Any], None]
CallbackOnPublish = Callable[..., None]
CallbackOnSocket = Callable[[Any, Any, Any], None]
CallbackOnSubscribe = Callable[..., None]
CallbackOnUnsubscribe = Callable[..., None]

# paho's name for a WebSocket upgrade that failed.
WebsocketConnectionError = WebSocketError

_CONNACK_NAMES = {
    ConnackCode.CONNACK_ACCEPTED: "Success",
    ConnackCode.CONNACK_REFUSED_PROTOCOL_VERSION: "Unsupported protocol version",
    ConnackCode.CONNACK_REFUSED_IDENTIFIER_REJECTED: "Client identifier not valid",
    ConnackCode.CONNACK_REFUSED_SERVER_UNAVAILABLE: "Server unavailable",
    ConnackCode.CONNACK_REFUSED_BAD_USERNAME_PASSWORD: "Bad user name or password",
    ConnackCode.CONNACK_REFUSED_NOT_AUTHORIZED: "Not authorized",
}
_DISCONNECT_NAMES = {
    MQTTErrorCode.MQTT_ERR_SUCCESS: "Success",
    MQTTErrorCode.MQTT_ERR_KEEPALIVE: "Keep alive timeout",
    MQTTErrorCode.MQTT_ERR_PROTOCOL: "Protocol error",
}


def convert_connack_rc_to_reason_code(connack_code: int) -> ReasonCode:
    """An MQTT 3.1.1 CONNACK return code as the MQTT 5 reason code of the same meaning
    (their numbers differ: compare by name)."""
    name = _CONNACK_NAMES.get(connack_code, "Unspecified error")  # type: ignore[call-overload]
    return ReasonCode(PacketTypes.CONNACK, name)


def convert_disconnect_error_code_to_reason_code(rc: int) -> ReasonCode:
    """An ``MQTT_ERR_*`` code of a lost connection as a DISCONNECT reason code."""
    name = _DISCONNECT_NAMES.get(rc, "Unspecified error")  # type: ignore[call-overload]
    return ReasonCode(PacketTypes.DISCONNECT, name)


__all__ = [
    "CallbackOnConnect", "CallbackOnConnectFail", "CallbackOnDisconnect", "CallbackOnLog",
    "CallbackOnMessage", "CallbackOnPreConnect", "CallbackOnPublish", "CallbackOnSocket",
    "CallbackOnSubscribe", "CallbackOnUnsubscribe", "CleanStartOption", "HTTPHeader",
    "MQTTException", "PayloadType", "SocketLike", "WebSocketHeaders", "WebsocketConnectionError",
    "convert_connack_rc_to_reason_code", "convert_disconnect_error_code_to_reason_code",
]
