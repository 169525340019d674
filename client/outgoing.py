"""Outgoing messages: the in-flight window and the queue behind it, in publish order, mirrored
to the durable outbox when the client has one. No I/O and no locking: the client holds its lock
around every call."""

from __future__ import annotations

from collections import deque

from mqlite.protocol import Properties

from .message import MQTTMessageInfo
from .outbox import PUBLISH_SENT, PUBREL_PENDING, QUEUED, Outbox


class Pending:
    """One message on its way out."""

    __slots__ = ("info", "payload", "properties", "qos", "retain", "sent_before", "state",
                 "topic")

    def __init__(self, info: MQTTMessageInfo, topic: str, payload: bytes, qos: int, retain: bool,
                 properties: Properties, state: int = QUEUED) -> None:
        self.info = info
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.state = state
        # Whether a PUBLISH for it may have reached the broker: a resend then carries DUP.
        self.sent_before = state != QUEUED

    @property
    def mid(self) -> int:
        return self.info.mid


class Outgoing:
    """QoS 1/2 messages until their flow completes, plus anything published while offline."""

    __slots__ = ("inflight", "messages", "outbox", "waiting")

    def __init__(self, outbox: Outbox | None) -> None:
        # mid -> message, for QoS 1 and 2, in publish order.
        self.messages: dict[int, Pending] = {}
        # What is still to be written, in order: queued QoS 1/2 messages, resends after a
        # reconnect, and QoS 0 messages published while offline.
        self.waiting: deque[Pending] = deque()
        self.inflight = 0
        self.outbox = outbox

    def stored(self) -> int:
        """Messages counted against max_queued_messages: unfinished QoS 1/2 and offline QoS 0."""
        return len(self.messages) + sum(1 for pending in self.waiting if pending.qos == 0)

    def add(self, pending: Pending) -> None:
        if pending.qos:
            self.messages[pending.mid] = pending
            if self.outbox is not None:
                self.outbox.add(pending.mid, pending.topic, pending.payload, pending.qos,
                                pending.retain, pending.properties)
        self.waiting.append(pending)

    def restore(self, pending: Pending) -> None:
        """Take back a message read from the outbox (it is already stored there)."""
        self.messages[pending.mid] = pending
        self.waiting.append(pending)

    def next_to_send(self, window: int) -> Pending | None:
        """The next message to write, if the in-flight window allows one."""
        waiting = self.waiting
        if not waiting:
            return None
        pending = waiting[0]
        if pending.qos:
            if self.inflight >= window:
                return None
            self.inflight += 1
        waiting.popleft()
        return pending

    def mark_sent(self, pending: Pending) -> None:
        if pending.state == QUEUED:
            pending.state = PUBLISH_SENT
            if self.outbox is not None:
                self.outbox.set_state(pending.mid, PUBLISH_SENT)
        pending.sent_before = True

    def pubrec(self, mid: int) -> Pending | None:
        """PUBREC for ``mid``: the message now waits for PUBCOMP (PUBREL is to be sent)."""
        pending = self.messages.get(mid)
        if pending is None or pending.qos != 2:
            return None
        if pending.state != PUBREL_PENDING:
            pending.state = PUBREL_PENDING
            if self.outbox is not None:
                self.outbox.set_state(mid, PUBREL_PENDING)
        return pending

    def complete(self, mid: int, qos: int) -> Pending | None:
        """PUBACK (qos 1) or PUBCOMP (qos 2) for ``mid``: the flow is over."""
        pending = self.messages.get(mid)
        if pending is None or pending.qos != qos:
            return None
        if qos == 2 and pending.state != PUBREL_PENDING:
            return None
        del self.messages[mid]
        self.inflight -= 1
        if self.outbox is not None:
            self.outbox.remove(mid)
        return pending

    def fail(self, mid: int) -> Pending | None:
        """A PUBREC with a failure code ends a QoS 2 flow early (MQTT 5)."""
        pending = self.messages.pop(mid, None)
        if pending is not None:
            self.inflight -= 1
            if self.outbox is not None:
                self.outbox.remove(mid)
        return pending

    def rewind(self, session_present: bool) -> None:
        """After a reconnect: everything in flight goes first in line again, in order. Without
        a session on the broker, a PUBLISH is sent afresh (no DUP: it is a new flow there)."""
        in_flight = [pending for pending in self.messages.values() if pending.state != QUEUED]
        if not session_present:
            for pending in in_flight:
                pending.sent_before = False
        self.waiting = deque([*in_flight, *(p for p in self.waiting if p.state == QUEUED)])
        self.inflight = 0

    def drop_all(self) -> list[Pending]:
        """Remove every unfinished message (paho's ``drop_out_messages``)."""
        dropped = [*self.messages.values(), *(p for p in self.waiting if p.qos == 0)]
        if self.outbox is not None:
            for pending in self.messages.values():
                self.outbox.remove(pending.mid)
        self.messages.clear()
        self.waiting.clear()
        self.inflight = 0
        return dropped
