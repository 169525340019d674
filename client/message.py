"""Messages in both directions: ``MQTTMessage`` (received, or kept for sending) and
``MQTTMessageInfo`` (what ``publish()`` returns), shaped like paho-mqtt's."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgpack  # type: ignore[import-untyped]  # ships no type information

from .constants import MQTT_ERR_QUEUE_SIZE, MQTT_ERR_SUCCESS, MQTTErrorCode, error_string
from .mqtt5_types import Properties


class MQTTMessage:
    """One application message. ``topic`` is a ``str``; ``payload`` is ``bytes``."""

    __slots__ = ("_topic", "dup", "info", "mid", "payload", "properties", "qos", "retain",
                 "state", "timestamp")

    def __init__(self, mid: int = 0, topic: bytes | str = b"") -> None:
        self.mid = mid
        self._topic = topic.encode() if isinstance(topic, str) else topic
        self.payload = b""
        self.qos = 0
        self.retain = False
        self.dup = False
        self.timestamp = 0.0
        self.state = 0
        self.properties: Properties | None = None
        self.info = MQTTMessageInfo(mid)

    @property
    def topic(self) -> str:
        return self._topic.decode("utf-8")

    @topic.setter
    def topic(self, value: str) -> None:
        self._topic = value.encode("utf-8")

    def unpack_msgpack(self) -> Any:
        """The Python object a ``publish_msgpack()`` (or any msgpack producer) sent."""
        return msgpack.unpackb(self.payload, raw=False)

    def __repr__(self) -> str:
        return (f"MQTTMessage(topic={self.topic!r}, payload={self.payload[:32]!r}, qos={self.qos},"
                f" retain={self.retain}, mid={self.mid})")


# One condition for every message's completion: creating one per message cost more than the
# rest of publish(); waiters check their own message's state when woken.
_completion = threading.Condition()


class MQTTMessageInfo:
    """The outcome of one ``publish()``: ``mid``, ``rc`` and a way to wait for completion.

    A message published while the client is offline is queued with ``rc == MQTT_ERR_SUCCESS``,
    and ``wait_for_publish()`` waits for it to go out instead of raising.
    """

    __slots__ = ("_callbacks", "_published", "mid", "rc", "reason_code")

    def __init__(self, mid: int) -> None:
        self.mid = mid
        self.rc: MQTTErrorCode = MQTT_ERR_SUCCESS
        # The broker's PUBACK/PUBREC/PUBCOMP reason code (MQTT 5), once the flow completes.
        self.reason_code: int = 0
        self._published = False
        self._callbacks: list[Callable[[MQTTMessageInfo], None]] | None = None

    def __iter__(self) -> Iterator[int]:
        return iter((self.rc, self.mid))

    def __getitem__(self, index: int) -> int:
        return (self.rc, self.mid)[index]

    def __str__(self) -> str:
        return str((self.rc, self.mid))

    def _check(self) -> None:
        if self.rc == MQTT_ERR_QUEUE_SIZE:
            raise ValueError("Message is not queued due to ERR_QUEUE_SIZE")
        if self.rc != MQTT_ERR_SUCCESS and not self._published:
            raise RuntimeError(f"Message publish failed: {error_string(self.rc)}")

    def wait_for_publish(self, timeout: float | None = None) -> bool:
        """Block until the message is published (QoS 0: written; 1: PUBACK; 2: PUBCOMP), or
        ``timeout`` seconds pass. True if it was published."""
        self._check()
        with _completion:
            _completion.wait_for(lambda: self._published or self.rc != MQTT_ERR_SUCCESS,
                                     timeout)
        self._check()
        return self._published

    def is_published(self) -> bool:
        self._check()
        return self._published

    def add_done_callback(self, callback: Callable[[MQTTMessageInfo], None]) -> None:
        """Call ``callback(info)`` once the message is published or has failed (at once if it
        already has). It runs on the thread that completes the message."""
        with _completion:
            if not (self._published or self.rc != MQTT_ERR_SUCCESS):
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self)

    def _finish(self, rc: MQTTErrorCode = MQTT_ERR_SUCCESS, reason_code: int = 0) -> None:
        with _completion:
            if self._published or self.rc != MQTT_ERR_SUCCESS:
                return
            if rc == MQTT_ERR_SUCCESS:
                self._published = True
            self.rc = rc
            self.reason_code = reason_code
            _completion.notify_all()
            callbacks, self._callbacks = self._callbacks or [], None
        for callback in callbacks:
            callback(self)

