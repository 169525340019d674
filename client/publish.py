"""paho-mqtt's ``paho.mqtt.publish``: connect, publish one message or several, wait until
each is delivered (QoS 1/2 acknowledged, QoS 0 written), disconnect.

    from mqlite.client import publish
    publish.single("sensors/t", "21.5", qos=1, hostname="broker.local")
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .client import Client
from .constants import CallbackAPIVersion, MQTTv311
from .exception import MQTTException

Message = Mapping[str, Any] | Sequence[Any]


def configured_client(client_id: str, protocol: int, transport: str, userdata: Any,
                      will: Mapping[str, Any] | None, auth: Mapping[str, Any] | None,
                      tls: Mapping[str, Any] | ssl.SSLContext | None,
                      proxy_args: Any = None, clean_session: bool | None = None) -> Client:
    """A client set up from the helpers' arguments (shared with ``subscribe``)."""
    if proxy_args is not None:
        raise ValueError("proxy_args: connecting through a proxy is not supported")
    client = Client(CallbackAPIVersion.VERSION2, client_id, clean_session=clean_session,
                    userdata=userdata, protocol=protocol, transport=transport,
                    reconnect_on_failure=True)  # a dropped connection is resumed
    if auth:
        if not auth.get("username"):
            raise KeyError("The 'username' key was not found, this is required for auth")
        client.username_pw_set(auth["username"], auth.get("password"))
    if will is not None:
        client.will_set(**will)
    if isinstance(tls, ssl.SSLContext):
        client.tls_set_context(tls)
    elif tls is not None:
        options = dict(tls)
        insecure = options.pop("insecure", False)
        client.tls_set(**options)
        if insecure:
            client.tls_insecure_set(True)  # after tls_set, whose context it changes
    return client


def run_until_done(client: Client, hostname: str, port: int, keepalive: int,
                   errors: list[BaseException]) -> None:
    """Connect, run the loop until the callbacks disconnect, raise what they recorded."""
    client.connect(hostname, port, keepalive)
    client.loop_forever()
    if errors:
        raise errors[0]


def _as_message(message: Message) -> dict[str, Any]:
    if isinstance(message, Mapping):
        if not message.get("topic"):
            raise ValueError("each message needs a topic")
        return {"topic": message["topic"], "payload": message.get("payload"),
                "qos": message.get("qos", 0), "retain": message.get("retain", False)}
    if not 1 <= len(message) <= 4:
        raise ValueError("a message tuple is (topic, payload, qos, retain)")
    defaults: list[Any] = [None, 0, False]
    topic, payload, qos, retain = [*message, *defaults[len(message) - 1:]]
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain}


def multiple(msgs: Iterable[Message], hostname: str = "localhost", port: int = 1883,
             client_id: str = "", keepalive: int = 60, will: Mapping[str, Any] | None = None,
             auth: Mapping[str, Any] | None = None,
             tls: Mapping[str, Any] | ssl.SSLContext | None = None,
             protocol: int = MQTTv311, transport: str = "tcp",
             proxy_args: Any = None) -> None:
    """Publish every message of ``msgs`` (dicts with topic, payload, qos, retain, or tuples
    in that order), in order, then disconnect once all are delivered. A refused connection
    raises MQTTException; an unreachable broker raises OSError."""
    if not isinstance(msgs, Iterable):
        raise TypeError("msgs must be an iterable")
    messages = [_as_message(message) for message in msgs]
    if not messages:
        raise ValueError("msgs is empty")
    errors: list[BaseException] = []
    client = configured_client(client_id, protocol, transport, None, will, auth, tls,
                               proxy_args)
    unfinished: set[int] = set()

    def on_connect(c: Client, userdata: Any, flags: Any, reason_code: Any,
                   properties: Any) -> None:
        if reason_code.is_failure:
            errors.append(MQTTException(f"connection refused: {reason_code}"))
            c.disconnect()
            return
        if not messages:
            return  # a reconnect: what was in flight is resent by the client itself
        infos = [c.publish(**message) for message in messages]
        messages.clear()
        unfinished.update(info.mid for info in infos if not info.is_published())
        if not unfinished:
            c.disconnect()

    def on_publish(c: Client, userdata: Any, mid: int, reason_code: Any,
                   properties: Any) -> None:
        unfinished.discard(mid)
        if not unfinished:
            c.disconnect()

    client.on_connect = on_connect
    client.on_publish = on_publish
    run_until_done(client, hostname, port, keepalive, errors)


def single(topic: str, payload: Any = None, qos: int = 0, retain: bool = False,
           hostname: str = "localhost", port: int = 1883, client_id: str = "",
           keepalive: int = 60, will: Mapping[str, Any] | None = None,
           auth: Mapping[str, Any] | None = None,
           tls: Mapping[str, Any] | ssl.SSLContext | None = None,
           protocol: int = MQTTv311, transport: str = "tcp", proxy_args: Any = None) -> None:
    """Publish one message, then disconnect once it is delivered (see :func:`multiple`)."""
    multiple([{"topic": topic, "payload": payload, "qos": qos, "retain": retain}], hostname,
             port, client_id, keepalive, will, auth, tls, protocol, transport, proxy_args)
