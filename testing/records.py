"""What the test broker saw: every PUBLISH it accepted, and waiting for some to arrive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mqlite.broker import ClientInfo, Hook, Message
from mqlite.protocol import Properties, topic_matches_filter


@dataclass(frozen=True, slots=True)
class Published:
    """One PUBLISH the broker accepted (or one :meth:`TestBroker.publish` made: client_id
    None). ``time`` is the broker clock's wall time when it arrived."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties
    client_id: str | None
    time: float

    def __str__(self) -> str:
        shown = self.payload[:40]
        more = "..." if len(self.payload) > 40 else ""
        flags = " retain" if self.retain else ""
        return f"{self.topic!r} {shown!r}{more} qos={self.qos}{flags} from {self.client_id!r}"


def describe(messages: list[Published], limit: int = 20) -> str:
    """The messages, one a line, for a failure message."""
    if not messages:
        return "  (none)"
    lines = [f"  {message}" for message in messages[-limit:]]
    if len(messages) > limit:
        lines.insert(0, f"  ... {len(messages) - limit} earlier ones")
    return "\n".join(lines)


class Recorder(Hook):
    """The last hook: records each message as the broker routes it, unchanged."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._changed = threading.Condition()
        self.messages: list[Published] = []
        self.connected: set[str] = set()  # client ids, as the broker's thread saw them

    def on_connect(self, client: ClientInfo) -> None:
        with self._changed:
            self.connected.add(client.client_id)
            self._changed.notify_all()

    def on_disconnect(self, client: ClientInfo, reason: str) -> None:
        with self._changed:
            self.connected.discard(client.client_id)
            self._changed.notify_all()

    def wait_for_client(self, client_id: str, connected: bool, timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: (client_id in self.connected) == connected,
                                          timeout):
                state = "connected" if connected else "disconnected"
                raise TimeoutError(f"{client_id!r} not {state} within {timeout} s (connected: "
                                   f"{', '.join(map(repr, sorted(self.connected))) or 'none'})")

    def on_publish(self, client: ClientInfo, message: Message) -> Message | None:
        self.add(message, client.client_id)
        return message

    def add(self, message: Message, client_id: str | None) -> None:
        record = Published(message.topic, message.payload, message.qos, message.retain,
                           message.properties, client_id, self._now())
        with self._changed:
            self.messages.append(record)
            self._changed.notify_all()

    def snapshot(self) -> list[Published]:
        """Every message so far, oldest first (a copy: the broker's thread keeps adding)."""
        with self._changed:
            return list(self.messages)

    def matching(self, topic_filter: str) -> list[Published]:
        with self._changed:
            return [m for m in self.messages if topic_matches_filter(topic_filter, m.topic)]

    def wait_for(self, topic_filter: str, count: int, timeout: float) -> list[Published]:
        """The first ``count`` messages on topics matching ``topic_filter``, once they have
        arrived; TimeoutError showing what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in self.messages if topic_matches_filter(topic_filter, m.topic)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(found)} of {count} message(s) on {topic_filter!r} within "
                        f"{timeout} s; the broker accepted:\n{describe(self.messages)}")
                self._changed.wait(left)

    def clear(self) -> None:
        with self._changed:
            self.messages.clear()
