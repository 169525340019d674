"""``log_dest topic``: the broker's log lines published on ``$SYS/broker/log/<level>``
(mosquitto's topics: E, W, N, I, D), QoS 0, not retained, to whoever may read ``$SYS``.

A log line may come from any thread and from inside a loop turn; it is queued (at most
``LIMIT``, the oldest dropped first) and published at the start of the broker's next turn.
Lines logged while publishing, and the per-packet debug lines, are not published: a log that
feeds itself would never stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ..message import Message
from .routing import route
from .services import BrokerServices

LIMIT = 1000
_LETTERS = {logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E",
            logging.CRITICAL: "E"}
_NOT_PUBLISHED = ("mqlite.broker.packets",)


class _Broker(Protocol):
    @property
    def core(self) -> BrokerServices: ...

    def call_soon(self, callback: Callable[[], None]) -> None: ...


class LogTopicHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[tuple[str, str]] = deque(maxlen=LIMIT)
        self._broker: _Broker | None = None
        self._scheduled = False
        self._publishing = threading.local()

    def attach(self, broker: _Broker) -> None:
        """The broker to publish through (its loop may start later)."""
        self._broker = broker

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._publishing, "active", False) or record.name in _NOT_PUBLISHED:
            return
        letter = _LETTERS.get(record.levelno, "I")
        self._queue.append((letter, self.format(record)))
        broker = self._broker
        if broker is None or self._scheduled:
            return
        try:
            broker.call_soon(self._publish)
            self._scheduled = True
        except RuntimeError:
            pass  # the loop is not running yet: the next line schedules it

    def _publish(self) -> None:
        """On the broker's thread: every queued line, in order."""
        self._scheduled = False
        broker = self._broker
        if broker is None:
            return
        self._publishing.active = True
        try:
            core = broker.core
            now = time.monotonic()
            while self._queue:
                letter, text = self._queue.popleft()
                route(core, Message(topic=f"$SYS/broker/log/{letter}", payload=text.encode(),
                                    qos=0, retain=False), now)
        finally:
            self._publishing.active = False
