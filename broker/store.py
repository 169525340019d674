"""The persistence seam: the broker writes every change of persistent-session state and of the
retained messages through a :class:`SessionStore`, once per change, and calls ``commit()`` once
per event-loop turn *before* that turn's acknowledgements go out. A store may defer writes no
peer is told of (QoS 1 sends, completed flows) past a turn, within the bound it reports by
``flush_deadline()``; ``flush()`` commits everything.

Only persistent sessions (clean_session=0, or Session Expiry Interval > 0) are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from mqlite.protocol import Will

from .message import Message
from .session import Delivery, SubscriptionOptions


@dataclass(slots=True, kw_only=True)
class StoredSession:
    client_id: str
    protocol_version: int
    expiry_interval: int
    will: Will | None = None
    will_delay: int = 0
    # Wall-clock time the session's connection ended; None while connected (or if the broker
    # stopped under it). Expiry counts from here across broker restarts.
    disconnected_at: float | None = None


@dataclass(slots=True, kw_only=True)
class StoredDelivery:
    seq: int
    message: Message
    qos: int
    retain: bool
    packet_id: int | None
    state: int
    subscription_ids: tuple[int, ...] = ()

    @classmethod
    def of(cls, delivery: Delivery) -> StoredDelivery:
        return cls(seq=delivery.seq, message=delivery.message, qos=delivery.qos,
                   retain=delivery.retain, packet_id=delivery.packet_id, state=delivery.state,
                   subscription_ids=delivery.subscription_ids)


@dataclass(slots=True)
class StoredState:
    """Everything a store holds, as ``load()`` returns it at start-up."""

    sessions: dict[str, StoredSession] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, SubscriptionOptions]] = field(default_factory=dict)
    deliveries: dict[str, dict[int, StoredDelivery]] = field(default_factory=dict)
    inbound_qos2: dict[str, set[int]] = field(default_factory=dict)
    retained: dict[str, Message] = field(default_factory=dict)


class StoreWriteError(Exception):
    """A write or commit failed (disk full, I/O error): what it held is not stored."""


class SessionStore(Protocol):
    def load(self) -> StoredState: ...
    def save_session(self, session: StoredSession) -> None: ...
    def delete_session(self, client_id: str) -> None:
        """Remove the session with its subscriptions, deliveries and inbound QoS 2 ids."""
    def save_subscription(self, client_id: str, topic_filter: str,
                          options: SubscriptionOptions) -> None: ...
    def delete_subscription(self, client_id: str, topic_filter: str) -> None: ...
    def save_delivery(self, client_id: str, delivery: Delivery) -> None:
        """Insert a delivery, or record its new packet id and state."""
    def delete_delivery(self, client_id: str, seq: int, at_most_once: bool = False) -> None:
        """``at_most_once``: a QoS 0 message was sent, so the deletion may not be lost."""
    def add_inbound_qos2(self, client_id: str, packet_id: int) -> None: ...
    def delete_inbound_qos2(self, client_id: str, packet_id: int) -> None: ...
    def save_retained(self, message: Message) -> None: ...
    def delete_retained(self, topic: str) -> None: ...
    def commit(self) -> None:
        """Make durable everything written since the last commit that a peer is told of."""
    def flush(self) -> None:
        """Make everything written durable, deferred writes too."""
    def flush_deadline(self) -> float | None:
        """Monotonic time by which ``commit()`` must be called again, if writes are deferred."""
    def rollback(self) -> None:
        """Forget everything written since the last commit (after a StoreWriteError)."""
    def close(self) -> None: ...


class MemoryStore:
    """A :class:`SessionStore` in this process's memory: nothing survives the process, but
    a broker stopped and started again with the same store resumes every session.

    It keeps copies, never the broker's live objects, so it holds exactly what was written.
    """

    def __init__(self) -> None:
        self._state = StoredState()

    def load(self) -> StoredState:
        state = self._state
        return StoredState(
            sessions=dict(state.sessions),
            subscriptions={c: dict(s) for c, s in state.subscriptions.items()},
            deliveries={c: dict(d) for c, d in state.deliveries.items()},
            inbound_qos2={c: set(i) for c, i in state.inbound_qos2.items()},
            retained=dict(state.retained),
        )

    def save_session(self, session: StoredSession) -> None:
        self._state.sessions[session.client_id] = replace(session)

    def delete_session(self, client_id: str) -> None:
        state = self._state
        state.sessions.pop(client_id, None)
        state.subscriptions.pop(client_id, None)
        state.deliveries.pop(client_id, None)
        state.inbound_qos2.pop(client_id, None)

    def save_subscription(self, client_id: str, topic_filter: str,
                          options: SubscriptionOptions) -> None:
        self._state.subscriptions.setdefault(client_id, {})[topic_filter] = options

    def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        self._state.subscriptions.get(client_id, {}).pop(topic_filter, None)

    def save_delivery(self, client_id: str, delivery: Delivery) -> None:
        self._state.deliveries.setdefault(client_id, {})[delivery.seq] = StoredDelivery.of(
            delivery)

    def delete_delivery(self, client_id: str, seq: int, at_most_once: bool = False) -> None:
        self._state.deliveries.get(client_id, {}).pop(seq, None)

    def add_inbound_qos2(self, client_id: str, packet_id: int) -> None:
        self._state.inbound_qos2.setdefault(client_id, set()).add(packet_id)

    def delete_inbound_qos2(self, client_id: str, packet_id: int) -> None:
        self._state.inbound_qos2.get(client_id, set()).discard(packet_id)

    def save_retained(self, message: Message) -> None:
        self._state.retained[message.topic] = message

    def delete_retained(self, topic: str) -> None:
        self._state.retained.pop(topic, None)

    def commit(self) -> None:
        """Nothing to commit: writes are complete when made."""

    def flush(self) -> None:
        """Nothing deferred."""

    def flush_deadline(self) -> None:
        return None

    def rollback(self) -> None:
        """Nothing to undo: writes to memory do not fail."""

    def close(self) -> None:
        """Nothing to release; the state stays for the next broker using this store."""
