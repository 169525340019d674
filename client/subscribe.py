"""paho-mqtt's ``paho.mqtt.subscribe``: connect, subscribe, and take messages, either a
number of them (:func:`simple`) or each to a callback until it disconnects (:func:`callback`).

    from mqlite.client import subscribe
    message = subscribe.simple("sensors/#", hostname="broker.local")
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any

from .client import Client
from .constants import MQTTv5, MQTTv311
from .exception import MQTTException
from .message import MQTTMessage
from .publish import configured_client, run_until_done


def callback(callback: Callable[[Client, Any, MQTTMessage], None], topics: str | list[str],
             qos: int = 0, userdata: Any = None, hostname: str = "localhost", port: int = 1883,
             client_id: str = "", keepalive: int = 60, will: Mapping[str, Any] | None = None,
             auth: Mapping[str, Any] | None = None,
             tls: Mapping[str, Any] | ssl.SSLContext | None = None, protocol: int = MQTTv311,
             transport: str = "tcp", clean_session: bool = True,
             proxy_args: Any = None) -> None:
    """Subscribe to ``topics`` and call ``callback(client, userdata, message)`` for each
    message until a callback calls ``client.disconnect()``. A refused connection or
    subscription raises MQTTException."""
    if qos not in (0, 1, 2):
        raise ValueError("qos must be in the range 0-2")
    filters = [topics] if isinstance(topics, str) else list(topics)
    if not filters:
        raise ValueError("topics is empty")
    errors: list[BaseException] = []
    client = configured_client(client_id, protocol, transport, userdata, will, auth, tls,
                               proxy_args, None if protocol == MQTTv5 else clean_session)

    def on_connect(c: Client, data: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            errors.append(MQTTException(f"connection refused: {reason_code}"))
            c.disconnect()
        else:
            c.subscribe([(topic_filter, qos) for topic_filter in filters])

    def on_subscribe(c: Client, data: Any, mid: int, reason_codes: Any,
                     properties: Any) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            errors.append(MQTTException(f"subscription refused: {', '.join(refused)}"))
            c.disconnect()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = callback
    run_until_done(client, hostname, port, keepalive, errors)


def simple(topics: str | list[str], qos: int = 0, msg_count: int = 1, retained: bool = True,
           hostname: str = "localhost", port: int = 1883, client_id: str = "",
           keepalive: int = 60, will: Mapping[str, Any] | None = None,
           auth: Mapping[str, Any] | None = None,
           tls: Mapping[str, Any] | ssl.SSLContext | None = None, protocol: int = MQTTv311,
           transport: str = "tcp", clean_session: bool = True,
           proxy_args: Any = None) -> MQTTMessage | list[MQTTMessage]:
    """Subscribe and return the first ``msg_count`` messages (one message when 1, else a
    list); ``retained=False`` skips retained messages."""
    if msg_count < 1:
        raise ValueError("msg_count must be > 0")
    taken: list[MQTTMessage] = []

    def take(c: Client, data: Any, message: MQTTMessage) -> None:
        if len(taken) >= msg_count or (message.retain and not retained):
            return
        taken.append(message)
        if len(taken) == msg_count:
            c.disconnect()

    callback(take, topics, qos, None, hostname, port, client_id, keepalive, will, auth, tls,
             protocol, transport, clean_session, proxy_args)
    return taken[0] if msg_count == 1 else taken
