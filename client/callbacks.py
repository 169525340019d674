"""One ``typing.Protocol`` per callback, with paho-mqtt's callback API version 2 signatures, so
a type checker tells a program (and this package) when a callback takes the wrong arguments.
The parameters are positional-only: a callback may name them as it likes. The client comes
first, typed Any here: naming its class would make this module and the client's import each
other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .message import MQTTMessage
    from .mqtt5_types import ConnectFlags, DisconnectFlags, Properties, ReasonCode


class OnConnect(Protocol):
    def __call__(self, client: Any, userdata: Any, flags: ConnectFlags,
                 reason_code: ReasonCode, properties: Properties, /) -> None: ...


class OnDisconnect(Protocol):
    def __call__(self, client: Any, userdata: Any, flags: DisconnectFlags,
                 reason_code: ReasonCode, properties: Properties, /) -> None: ...


class OnMessage(Protocol):
    def __call__(self, client: Any, userdata: Any, message: MQTTMessage, /) -> None: ...


class OnPublish(Protocol):
    def __call__(self, client: Any, userdata: Any, mid: int, reason_code: ReasonCode,
                 properties: Properties, /) -> None: ...


class OnSubscribe(Protocol):
    """on_subscribe and on_unsubscribe: one reason code per filter."""

    def __call__(self, client: Any, userdata: Any, mid: int,
                 reason_codes: list[ReasonCode], properties: Properties, /) -> None: ...


class OnLog(Protocol):
    """``level`` is one of the MQTT_LOG_* constants."""

    def __call__(self, client: Any, userdata: Any, level: int, message: str, /) -> None: ...


class OnSocket(Protocol):
    """on_socket_open, on_socket_close, on_socket_register_write and _unregister_write."""

    def __call__(self, client: Any, userdata: Any, sock: Any, /) -> None: ...


class OnClientEvent(Protocol):
    """on_connect_fail and on_pre_connect."""

    def __call__(self, client: Any, userdata: Any, /) -> None: ...
