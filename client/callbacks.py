"""One ``typing.Protocol`` per callback, with paho-mqtt's callback API version 2 signatures, so
a type checker tells a program (and this package) when a callback takes the wrong arguments.
The parameters are positional-only: a callback may name them as it likes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .client import Client
    from .message import MQTTMessage
    from .mqtt5_types import ConnectFlags, DisconnectFlags, Properties, ReasonCode


class OnConnect(Protocol):
    def __call__(self, client: Client, userdata: Any, flags: ConnectFlags,
                 reason_code: ReasonCode, properties: Properties, /) -> None: ...


class OnDisconnect(Protocol):
    def __call__(self, client: Client, userdata: Any, flags: DisconnectFlags,
                 reason_code: ReasonCode, properties: Properties, /) -> None: ...


class OnMessage(Protocol):
    def __call__(self, client: Client, userdata: Any, message: MQTTMessage, /) -> None: ...


class OnPublish(Protocol):
    def __call__(self, client: Client, userdata: Any, mid: int, reason_code: ReasonCode,
                 properties: Properties, /) -> None: ...


class OnSubscribe(Protocol):
    """on_subscribe and on_unsubscribe: one reason code per filter."""

    def __call__(self, client: Client, userdata: Any, mid: int,
                 reason_codes: list[ReasonCode], properties: Properties, /) -> None: ...


class OnLog(Protocol):
    """``level`` is one of the MQTT_LOG_* constants."""

    def __call__(self, client: Client, userdata: Any, level: int, message: str, /) -> None: ...


class OnSocket(Protocol):
    """on_socket_open, on_socket_close, on_socket_register_write and _unregister_write."""

    def __call__(self, client: Client, userdata: Any, sock: Any, /) -> None: ...


class OnClientEvent(Protocol):
    """on_connect_fail and on_pre_connect."""

    def __call__(self, client: Client, userdata: Any, /) -> None: ...
