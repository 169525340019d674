"""Outgoing messages: the in-flight window and the queue behind it, in publish order, mirrored
to the durable outbox when the client has one. No I/O and no locking: the client holds its lock
around every call."""

from __future__ import annotations

from collections import deque

from mqlite.protocol import PacketIdAllocator, Properties
from mqlite.protocol.qos_flow import SENT_STATE, Ack, FlowState, Outcome, ack_outcome

from .message import MQTTMessage, MQTTMessageInfo
from .outbox import Outbox

QUEUED = FlowState.QUEUED


class Pending:
    """One message on its way out. ``mid`` is what publish() returned; ``packet_id`` is the
    wire identifier, taken only when the message enters the in-flight window, so any number of
    messages can wait behind the window."""

    __slots__ = ("info", "packet_id", "payload", "properties", "qos", "retain", "sent_before",
                 "seq", "state", "topic")

    def __init__(self, info: MQTTMessageInfo, topic: str, payload: bytes, qos: int, retain: bool,
                 properties: Properties, state: FlowState = QUEUED, packet_id: int = 0) -> None:
        self.info = info
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.state = state
        self.packet_id = packet_id
        self.seq = 0
        # Whether a PUBLISH for it may have reached the broker: a resend then carries DUP.
        self.sent_before = state != QUEUED

    @property
    def mid(self) -> int:
        return self.info.mid

    def as_message(self) -> MQTTMessage:
        """The message as paho's ``drop_out_messages()`` returns it."""
        message = MQTTMessage(self.mid, self.topic)
        message.payload, message.qos, message.retain = self.payload, self.qos, self.retain
        message.info = self.info
        return message

    @property
    def releasing(self) -> bool:
        """PUBREC came: what is (re)sent is PUBREL, never the PUBLISH again [MQTT-4.3.3-1]."""
        return self.state == FlowState.AWAIT_PUBCOMP


class Outgoing:
    """QoS 1/2 messages until their flow completes, plus anything published while offline."""

    __slots__ = ("ids", "in_flight", "inflight", "messages", "next_seq", "offline_qos0",
                 "outbox", "waiting")

    def __init__(self, outbox: Outbox | None, ids: PacketIdAllocator) -> None:
        # seq -> message, for QoS 1 and 2, in publish order.
        self.messages: dict[int, Pending] = {}
        # packet id -> message, for those holding a packet id (sent at least once).
        self.in_flight: dict[int, Pending] = {}
        # What is still to be written, in order: queued QoS 1/2 messages, resends after a
        # reconnect, and QoS 0 messages published while offline.
        self.waiting: deque[Pending] = deque()
        # How many of ``waiting`` are QoS 0, kept so stored() is not a scan per publish().
        self.offline_qos0 = 0
        self.inflight = 0
        self.next_seq = 1
        self.outbox = outbox
        self.ids = ids

    def stored(self) -> int:
        """Messages counted against max_queued_messages: unfinished QoS 1/2 and offline QoS 0."""
        return len(self.messages) + self.offline_qos0

    def add(self, pending: Pending) -> None:
        if pending.qos:
            pending.seq = self.next_seq
            self.next_seq += 1
            self.messages[pending.seq] = pending
            if self.outbox is not None:
                self.outbox.add(pending.seq, pending.mid, pending.topic, pending.payload,
                                pending.qos, pending.retain, pending.properties)
        else:
            self.offline_qos0 += 1
        self.waiting.append(pending)

    def restore(self, pending: Pending, seq: int) -> None:
        """Take back a message read from the outbox (it is already stored there)."""
        pending.seq = seq
        self.next_seq = max(self.next_seq, seq + 1)
        self.messages[seq] = pending
        if pending.packet_id:
            self.ids.reserve(pending.packet_id)
            self.in_flight[pending.packet_id] = pending
        self.waiting.append(pending)

    def next_to_send(self, window: int) -> Pending | None:
        """The next message to write, if the in-flight window (and packet ids) allow one."""
        waiting = self.waiting
        if not waiting:
            return None
        pending = waiting[0]
        if pending.qos:
            if self.inflight >= window:
                return None
            if not pending.packet_id:
                if len(self.ids) >= 65535:
                    return None
                mid = pending.mid
                if mid and mid not in self.ids:  # the message id, as paho sends it
                    self.ids.reserve(mid)
                    pending.packet_id = mid
                else:
                    pending.packet_id = self.ids.allocate()
                self.in_flight[pending.packet_id] = pending
            self.inflight += 1
        else:
            self.offline_qos0 -= 1
        waiting.popleft()
        return pending

    def mark_sent(self, pending: Pending) -> None:
        if pending.state == QUEUED:
            pending.state = SENT_STATE[pending.qos]
            if self.outbox is not None:
                self.outbox.set_state(pending.seq, pending.state, pending.packet_id)
        pending.sent_before = True

    def acknowledge(self, packet_id: int, ack: Ack) -> tuple[Outcome, Pending | None]:
        """What PUBACK, PUBREC or PUBCOMP does, by the protocol's flow table: a completed flow
        is removed, a released one now awaits PUBCOMP."""
        pending = self.in_flight.get(packet_id)
        outcome = ack_outcome(pending.state if pending is not None else None, ack)
        if outcome is Outcome.COMPLETE:
            self.fail(packet_id)
        elif outcome is Outcome.RELEASE:
            assert pending is not None
            if pending.state != FlowState.AWAIT_PUBCOMP:
                pending.state = FlowState.AWAIT_PUBCOMP
                if self.outbox is not None:
                    self.outbox.set_state(pending.seq, pending.state, packet_id)
        return outcome, pending

    def fail(self, packet_id: int) -> Pending | None:
        """End a flow (also early: a PUBREC with a failure code, MQTT 5)."""
        pending = self.in_flight.pop(packet_id, None)
        if pending is not None:
            self.inflight -= 1
            self._forget(pending)
        return pending

    def discard(self, pending: Pending) -> None:
        """Drop a message that cannot be sent (larger than the broker accepts)."""
        if pending.qos:
            if self.in_flight.pop(pending.packet_id, None) is not None:
                self.inflight -= 1
            self._forget(pending)

    def _forget(self, pending: Pending) -> None:
        self.messages.pop(pending.seq, None)
        if pending.packet_id:
            self.ids.release(pending.packet_id)
        if self.outbox is not None:
            self.outbox.remove(pending.seq)

    def rewind(self, session_present: bool) -> None:
        """After a reconnect: everything in flight goes first in line again, in order, a
        PUBLISH sent before with DUP set (it is a re-delivery attempt [MQTT-3.3.1-1], with or
        without a session on the broker, as paho sends it)."""
        in_flight = [pending for pending in self.messages.values() if pending.state != QUEUED]
        self.waiting = deque([*in_flight, *(p for p in self.waiting if p.state == QUEUED)])
        self.inflight = 0

    def drop_all(self) -> list[Pending]:
        """Remove every unfinished message (paho's ``drop_out_messages``)."""
        dropped = [*self.messages.values(), *(p for p in self.waiting if p.qos == 0)]
        for pending in list(self.messages.values()):
            self._forget(pending)
        self.in_flight.clear()
        self.waiting.clear()
        self.offline_qos0 = 0
        self.inflight = 0
        return dropped
