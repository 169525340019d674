"""The client's settings: what paho configures before connect() (credentials, will, TLS,
backoff, window sizes, logging, per-filter callbacks), and paho's small helper functions."""

from __future__ import annotations

import logging
import ssl
import uuid
import warnings
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, overload

from mqlite.protocol import InvalidTopic, TopicTrie, topic_matches_filter, validate_topic_name
from mqlite.protocol import Properties as WireProperties

from .constants import MQTT_CLEAN_START_FIRST_ONLY, CallbackAPIVersion, MQTTv5, MQTTv311
from .enhanced_auth import Authenticator
from .mqtt5_types import Properties, to_wire

Callback = Callable[..., Any]
T = TypeVar("T")
# Callback exceptions are always logged here, even without enable_logger().
fallback_logger = logging.getLogger("mqlite.client")


def topic_matches_sub(sub: str, topic: str) -> bool:
    """Whether ``topic`` matches the subscription filter ``sub`` (wildcards, ``$`` rule)."""
    return topic_matches_filter(sub, topic)


def payload_bytes(payload: Any) -> bytes:
    """paho's payload rules: str is UTF-8, numbers become their text, None is empty."""
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, int | float):
        return str(payload).encode("ascii")
    raise TypeError("payload must be a string, bytearray, int, float or None.")


def check_topic_name(topic: str) -> None:
    """ValueError, as paho raises, for a topic that may not be published to."""
    if not isinstance(topic, str) or not topic:
        raise ValueError("Invalid topic.")
    try:
        validate_topic_name(topic, max_levels=None)
    except InvalidTopic as exc:
        raise ValueError(f"Invalid topic {topic!r}: {exc}") from None


def checked_arguments(callback_api_version: Any, client_id: str | bytes | None,
                      clean_session: bool | None, protocol: int, transport: str) -> str:
    """Refuse what ``Client(...)`` cannot honour, as paho does; the client id to use (MQTT 3.1
    requires one: a random one if none is given)."""
    if isinstance(callback_api_version, str | bytes):
        raise TypeError("Unsupported callback API version: the first argument is "
                        "callback_api_version (CallbackAPIVersion.VERSION2), client_id comes "
                        "after (paho-mqtt 2.0 changed it: see docs/migrations.rst)")
    if not isinstance(callback_api_version, CallbackAPIVersion):
        raise ValueError("Unsupported callback API version")
    if callback_api_version == CallbackAPIVersion.VERSION1:
        warnings.warn("Callback API version 1 is deprecated, update to latest version",
                      category=DeprecationWarning, stacklevel=3)
    if protocol not in (MQTTv311, MQTTv5, 3):
        raise ValueError(f"unsupported protocol {protocol}: use MQTTv311 or MQTTv5")
    if protocol == MQTTv5 and clean_session is not None:
        raise ValueError("clean_session is not used with MQTTv5: use clean_start in connect()")
    if transport not in ("tcp", "unix", "websockets"):
        raise ValueError(f"transport {transport!r} is not supported: use 'tcp', "
                         "'websockets' or 'unix'")
    if isinstance(client_id, bytes):  # paho takes bytes too
        client_id = client_id.decode("utf-8")
    client_id = client_id or ""
    if clean_session is False and not client_id:
        raise ValueError("A client id must be provided if clean session is False.")
    if protocol == 3 and not client_id:
        client_id = "mqlite-" + uuid.uuid4().hex[:16]
    return client_id


class ConnectionSetting(Generic[T]):
    """A setting of the connection (host, port, credentials, ...): readable always, and, as
    in paho 2.x, assignable only while there is no connection (RuntimeError otherwise)."""

    def __init__(self, check: Callable[[T], bool] | None = None, complaint: str = "") -> None:
        self._check = check
        self._complaint = complaint

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._attribute = "_" + name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object, owner: type) -> Self | T:
        if instance is None:
            return self
        value: T = getattr(instance, self._attribute)
        return value

    def __set__(self, instance: ClientSettings, value: T) -> None:
        if instance._connection_active():
            raise RuntimeError(f"updating {self._name} on established connection is not "
                               f"supported")
        if self._check is not None and not self._check(value):
            raise ValueError(self._complaint)
        setattr(instance, self._attribute, value)


class ClientSettings:
    """Configuration held by :class:`~mqlite.client.client.Client`."""

    host: ConnectionSetting[str] = ConnectionSetting(bool, "Invalid host.")
    port: ConnectionSetting[int] = ConnectionSetting(lambda port: port > 0,
                                                     "Invalid port number.")
    keepalive: ConnectionSetting[int] = ConnectionSetting(lambda seconds: seconds >= 0,
                                                          "Keepalive must be >=0.")
    connect_timeout: ConnectionSetting[float] = ConnectionSetting(
        lambda seconds: seconds > 0, "timeout must be a positive number")
    username: ConnectionSetting[str | None] = ConnectionSetting()
    password: ConnectionSetting[str | bytes | None] = ConnectionSetting()
    max_inflight_messages: ConnectionSetting[int] = ConnectionSetting(
        lambda count: count >= 0, "Invalid inflight.")
    max_queued_messages: ConnectionSetting[int] = ConnectionSetting(
        lambda count: count >= 0, "Invalid queue size.")

    def __init__(self, userdata: Any, manual_ack: bool) -> None:
        self._userdata = userdata
        self._manual_ack = manual_ack
        self._host = ""
        self._port = 1883
        self._keepalive = 60
        self._connect_timeout = 5.0
        self._bind_address = ""
        self._bind_port = 0
        self._clean_start: int = MQTT_CLEAN_START_FIRST_ONLY
        self._connect_properties: Properties | None = None
        self._username: str | None = None
        self._password: str | bytes | None = None
        self._will: tuple[str, bytes, int, bool, WireProperties] | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._reconnect_delays = (1.0, 120.0)
        self._max_inflight_messages = 20
        self._max_queued_messages = 0
        self._logger: logging.Logger | None = None
        self._topic_callbacks: TopicTrie[str, Callback] = TopicTrie()
        self._ws_path = "/mqtt"
        self._ws_headers: dict[str, str] | None = None
        # MQTT 5 enhanced authentication (client/enhanced_auth.py), or None.
        self.authenticator: Authenticator | None = None
        # MQTT 3.1.x: the bridge bit in the protocol level (enable_bridge_mode).
        self.bridge_mode = False
        # Relay mode (relay_set): who gets the PUBLISH flows as packets, or None.
        self._relay: Callable[[Any], None] | None = None

    @property
    def will_topic(self) -> str | None:
        return self._will[0] if self._will else None

    @property
    def will_payload(self) -> bytes | None:
        return self._will[1] if self._will else None

    @property
    def _ssl_context(self) -> ssl.SSLContext | None:
        """paho's name for the TLS context (some programs and paho's tests read it)."""
        return self._tls_context

    @property
    def logger(self) -> logging.Logger | None:
        return self._logger

    @logger.setter
    def logger(self, value: logging.Logger | None) -> None:
        self._logger = value

    # -------------------------------------------------------------- configuration
    def enable_bridge_mode(self) -> None:
        """Connect as a bridge (paho's name): MQTT 3.1.x CONNECTs carry the bridge bit in
        the protocol level (0x83 / 0x84), so that a mosquitto or mqlite broker sends back
        none of this client's own messages and keeps the retain flags as published. Call it
        before connecting; MQTT 5 has subscription options for the same."""
        self.bridge_mode = True

    def relay_set(self, relay: Callable[[Any], None] | None) -> None:
        """Relay mode, for a bridge that relays another session's QoS flows with their
        packet ids (mqlite's own bridges do): every PUBLISH received, and every PUBACK,
        PUBREC, PUBREL or PUBCOMP for a flow this client did not start, goes to
        ``relay(packet)`` (an ``mqlite.protocol`` packet) on the loop's thread, unanswered,
        instead of ``on_message``; ``relay_send(packet)`` sends such packets. The client's own
        publish() and subscribe() keep working, with ids of their own. None: back to
        normal."""
        self._relay = relay

    def _connection_active(self) -> bool:
        """Whether a connection is open or being opened (the Client says)."""
        return False

    def _debugging(self) -> bool:
        """Whether debug lines go anywhere (on_log or enable_logger): else none is made."""
        return self._logger is not None

    def username_pw_set(self, username: str | None, password: str | bytes | None = None) -> None:
        self._username = username
        self._password = password

    def will_set(self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False,
                 properties: Properties | None = None) -> None:
        check_topic_name(topic)
        if qos not in (0, 1, 2):
            raise ValueError("Invalid QoS level.")
        self._will = (topic, payload_bytes(payload), qos, retain, to_wire(properties))

    def will_clear(self) -> None:
        self._will = None

    def tls_set(self, ca_certs: str | None = None, certfile: str | None = None,
                keyfile: str | None = None, cert_reqs: ssl.VerifyMode | None = None,
                tls_version: int | None = None, ciphers: str | None = None,
                keyfile_password: Any = None, alpn_protocols: list[str] | None = None) -> None:
        context = ssl.SSLContext(tls_version or ssl.PROTOCOL_TLS_CLIENT)
        if certfile is not None:
            context.load_cert_chain(certfile, keyfile, keyfile_password)
        if cert_reqs == ssl.CERT_NONE:
            context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED if cert_reqs is None else cert_reqs
        if ca_certs is not None:
            context.load_verify_locations(ca_certs)
        else:
            context.load_default_certs()
        if ciphers is not None:
            context.set_ciphers(ciphers)
        if alpn_protocols is not None:
            context.set_alpn_protocols(alpn_protocols)
        self._tls_context = context

    def tls_set_context(self, context: ssl.SSLContext | None = None) -> None:
        self._tls_context = context or ssl.create_default_context()

    def ws_set_options(self, path: str = "/mqtt", headers: dict[str, str] | None = None
                       ) -> None:
        """With ``transport="websockets"``: the request path and extra HTTP headers of the
        upgrade (paho's signature; a callable ``headers`` is not supported)."""
        if callable(headers):
            raise TypeError("headers must be a dict (a callable is not supported)")
        self._ws_path = path or "/mqtt"
        self._ws_headers = dict(headers) if headers else None

    def tls_insecure_set(self, value: bool) -> None:
        if self._tls_context is None:
            raise ValueError("Must configure SSL context before using tls_insecure_set.")
        self._tls_context.check_hostname = not value

    @property
    def reconnect_delays(self) -> tuple[float, float]:
        """The backoff bounds of ``reconnect_delay_set()``: (min_delay, max_delay)."""
        return self._reconnect_delays

    def reconnect_delay_set(self, min_delay: float = 1, max_delay: float = 120) -> None:
        """Backoff of the built-in loops: from ``min_delay``, doubling, at most ``max_delay``
        seconds, each wait jittered to between half and all of it."""
        if not 0 < min_delay <= max_delay:
            raise ValueError("need 0 < min_delay <= max_delay")
        self._reconnect_delays = (float(min_delay), float(max_delay))

    def max_inflight_messages_set(self, inflight: int) -> None:
        if inflight < 0:
            raise ValueError("Invalid inflight.")
        self._max_inflight_messages = inflight

    def max_queued_messages_set(self, queue_size: int) -> Self:
        if queue_size < 0:
            raise ValueError("Invalid queue size.")
        self._max_queued_messages = queue_size
        return self

    def user_data_set(self, userdata: Any) -> None:
        self._userdata = userdata

    def user_data_get(self) -> Any:
        return self._userdata

    def enable_logger(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or fallback_logger

    def disable_logger(self) -> None:
        self._logger = None

    def manual_ack_set(self, on: bool) -> None:
        self._manual_ack = on

    def message_callback_add(self, sub: str, callback: Callback) -> None:
        """Send messages matching ``sub`` to ``callback`` instead of ``on_message``."""
        self._topic_callbacks.add(sub, sub, callback)

    def message_callback_remove(self, sub: str) -> None:
        self._topic_callbacks.remove(sub, sub)

    def topic_callback(self, sub: str) -> Callable[[Callback], Callback]:
        def decorator(callback: Callback) -> Callback:
            self.message_callback_add(sub, callback)
            return callback
        return decorator
