"""The client's callbacks: one ``typing.Protocol`` per callback, with paho-mqtt's callback API
version 2 signatures, so a type checker tells a program (and this package) when a callback
takes the wrong arguments, and :class:`ClientCallbacks`, which holds and runs them. The
parameters are positional-only: a callback may name them as it likes. The client comes first,
typed Any here: naming its class would make this module and the client's import each other."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from mqlite.protocol import EMPTY_PROPERTIES
from mqlite.protocol import Properties as WireProperties

from .constants import (
    MQTT_ERR_SUCCESS,
    MQTT_LOG_DEBUG,
    MQTT_LOG_ERR,
    MQTT_LOG_INFO,
    MQTT_LOG_NOTICE,
    MQTT_LOG_WARNING,
    MQTTErrorCode,
)
from .events import PublishCompleted, RequestAcknowledged
from .message import MQTTMessage
from .mqtt5_types import (
    ConnectFlags,
    DisconnectFlags,
    PacketTypes,
    Properties,
    ReasonCode,
    from_wire,
    reason,
)
from .settings import Callback, ClientSettings, fallback_logger

_LOGGING_LEVELS: dict[int, int] = {MQTT_LOG_INFO: logging.INFO, MQTT_LOG_NOTICE: logging.INFO,
                   MQTT_LOG_WARNING: logging.WARNING, MQTT_LOG_ERR: logging.ERROR,
                   MQTT_LOG_DEBUG: logging.DEBUG}


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


class OnAuth(Protocol):
    """A re-authentication succeeded: the broker's AUTH 0x00, its proof checked."""

    def __call__(self, client: Any, userdata: Any, reason_code: ReasonCode,
                 properties: Properties | None, /) -> None: ...


class OnLog(Protocol):
    """``level`` is one of the MQTT_LOG_* constants."""

    def __call__(self, client: Any, userdata: Any, level: int, message: str, /) -> None: ...


class OnSocket(Protocol):
    """on_socket_open, on_socket_close, on_socket_register_write and _unregister_write."""

    def __call__(self, client: Any, userdata: Any, sock: Any, /) -> None: ...


class OnClientEvent(Protocol):
    """on_connect_fail and on_pre_connect."""

    def __call__(self, client: Any, userdata: Any, /) -> None: ...


class ClientCallbacks(ClientSettings):
    """The callback attributes of :class:`~mqlite.client.client.Client` and how they run:
    after the client's lock is released, in order, each exception logged (and the first
    raised at the end, unless exceptions are suppressed)."""

    _v1_callbacks = False  # paho 1.x's callback signatures (CallbackAPIVersion.VERSION1)

    def __init__(self, userdata: Any, manual_ack: bool) -> None:
        ClientSettings.__init__(self, userdata, manual_ack)
        # None: suppressed inside the built-in loops only (they set it for their run).
        self.suppress_exceptions: bool | None = None
        self.on_connect: OnConnect | None = None
        self.on_connect_fail: OnClientEvent | None = None
        self.on_pre_connect: OnClientEvent | None = None
        self.on_disconnect: OnDisconnect | None = None
        self.on_message: OnMessage | None = None
        self.on_publish: OnPublish | None = None
        self.on_subscribe: OnSubscribe | None = None
        self.on_unsubscribe: OnSubscribe | None = None
        self.on_log: OnLog | None = None
        self.on_auth: OnAuth | None = None
        self.on_socket_open: OnSocket | None = None
        self.on_socket_close: OnSocket | None = None
        self.on_socket_register_write: OnSocket | None = None
        self.on_socket_unregister_write: OnSocket | None = None

    # -- paho's decorator API: ``@client.connect_callback()`` sets on_connect, and so on ----

    def _assigns(self, attribute: str) -> Callable[[Callback], Callback]:
        def decorator(function: Callback) -> Callback:
            setattr(self, attribute, function)
            return function
        return decorator

    def pre_connect_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_pre_connect")

    def connect_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_connect")

    def connect_fail_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_connect_fail")

    def disconnect_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_disconnect")

    def subscribe_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_subscribe")

    def unsubscribe_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_unsubscribe")

    def message_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_message")

    def publish_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_publish")

    def log_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_log")

    def socket_open_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_socket_open")

    def socket_close_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_socket_close")

    def socket_register_write_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_socket_register_write")

    def socket_unregister_write_callback(self) -> Callable[[Callback], Callback]:
        return self._assigns("on_socket_unregister_write")

    def topic_callback(self, sub: str) -> Callable[[Callback], Callback]:
        """``@client.topic_callback("a/#")``: message_callback_add() as a decorator."""
        def decorator(function: Callback) -> Callback:
            self.message_callback_add(sub, function)
            return function
        return decorator

    def _acknowledged(self, event: RequestAcknowledged) -> None:
        callback = self.on_subscribe if event.subscribe else self.on_unsubscribe
        if not self._v1_callbacks:
            self._call(callback, event.mid, event.reasons, event.properties)
        elif not self._v5:  # paho 1.x with MQTT 3.1.1: granted QoS numbers; UNSUBACK: mid
            if event.subscribe:
                self._call(callback, event.mid, tuple(int(r) for r in event.reasons))
            else:
                self._call(callback, event.mid)
        elif event.subscribe:
            self._call(callback, event.mid, event.reasons, event.properties)
        else:  # paho 1.x's order; one reason code alone, not in a list
            reasons = event.reasons
            self._call(callback, event.mid, event.properties,
                       reasons[0] if len(reasons) == 1 else reasons)

    def _published(self, event: PublishCompleted) -> None:
        """on_publish, then the message counts as published (so wait_for_publish() returns
        after the callback ran, as in paho)."""
        try:
            if self.on_publish is None:
                pass
            elif self._v1_callbacks:
                self.on_publish(self, self._userdata, event.info.mid)  # type: ignore[call-arg]
            else:
                self.on_publish(self, self._userdata, event.info.mid,
                                reason(event.packet_type, event.reason_code),
                                from_wire(event.packet_type, event.properties))
        finally:
            event.info._finish(MQTT_ERR_SUCCESS, event.reason_code)

    def _disconnected(self, rc: MQTTErrorCode, code: Any, from_server: bool,
                      properties: WireProperties) -> None:
        if self.on_disconnect is None:
            return
        if self._v1_callbacks:  # paho 1.x: the error code, or MQTT 5's packet's reason code
            if not self._v5:
                self._call(self.on_disconnect, rc)
            elif from_server and code is not None:  # properties None: the packet had none
                self._call(self.on_disconnect, reason(PacketTypes.DISCONNECT, code),
                           None if properties is EMPTY_PROPERTIES
                           else from_wire(PacketTypes.DISCONNECT, properties))
            else:
                self._call(self.on_disconnect, rc, None)
            return
        if code is None:
            code = {MQTT_ERR_SUCCESS: 0x00, MQTTErrorCode.MQTT_ERR_KEEPALIVE: 0x8D,
                    MQTTErrorCode.MQTT_ERR_PROTOCOL: 0x82}.get(rc, 0x80)
        self.on_disconnect(self, self._userdata, DisconnectFlags(from_server),
                           reason(PacketTypes.DISCONNECT, code),
                           from_wire(PacketTypes.DISCONNECT, properties))

    @property
    def _v5(self) -> bool:
        return bool(getattr(self, "_protocol", 4) == 5)

    def _debugging(self) -> bool:
        return self.on_log is not None or self._logger is not None

    def _suppressing(self) -> bool:
        return bool(self.suppress_exceptions)

    def _call(self, callback: Callback | None, *args: Any) -> None:
        if callback is not None:
            callback(self, self._userdata, *args)

    def _run(self, calls: list[Callable[[], None]]) -> None:
        """Run callbacks in order. One that raises is logged; the rest still run; the first
        error is raised at the end unless exceptions are suppressed."""
        first: BaseException | None = None
        for call in calls:
            try:
                call()
            except Exception as exc:
                if self._suppressing():
                    self._log_callback_error(exc)
                elif first is None:
                    first = exc
        if first is not None:
            raise first

    def _log_callback_error(self, exc: Exception) -> None:
        (self._logger or fallback_logger).error("Caught exception in callback: %s", exc,
                                                 exc_info=exc)

    def _log(self, level: int, fmt: str, *args: Any) -> None:
        """To enable_logger()'s logger and on_log, if either is set."""
        if self.on_log is None and self._logger is None:
            return
        text = fmt % args if args else fmt
        if self._logger is not None:
            self._logger.log(_LOGGING_LEVELS.get(level, logging.DEBUG), text)
        if self.on_log is not None:
            try:
                self.on_log(self, self._userdata, level, text)
            except Exception:
                if not self._suppressing():
                    raise
