"""The persistence seam: at the end of each event-loop turn the broker hands the turn's
:mod:`~mqlite.broker.engine.journal` changes to a :class:`SessionStore`, which applies and commits
them *before* that turn's packets go out. A store may leave changes nobody was promised (QoS 1
sends, completed flows) to a later commit, within the bound it reports by
``flush_deadline()``; ``flush()`` commits everything.

Only persistent sessions (clean_session=0, or Session Expiry Interval > 0) have changes: the
journal decides that.

A store whose ``queues_on_disk`` is true holds the queues of persistent sessions so that the
broker need not: ``load()`` gives only each queue's totals (``StoredState.queues``), and the
broker reads the queued messages back a batch at a time with ``queued()`` as it sends them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..message import Message
from .journal import (
    Change,
    DeliveryDeleted,
    DeliverySaved,
    InboundQos2Added,
    InboundQos2Released,
    RetainedDeleted,
    RetainedSaved,
    SessionDeleted,
    SessionSaved,
    StoredDelivery,
    StoredSession,
    SubscriptionDeleted,
    SubscriptionSaved,
)
from .session import QUEUED, SubscriptionOptions

__all__ = ["MemoryStore", "SessionStore", "StoreWriteError", "StoredDelivery", "StoredQueue",
           "StoredSession", "StoredState"]


@dataclass(slots=True, kw_only=True)
class StoredQueue:
    """The queued (not in flight) messages of one session that ``load()`` left in the store."""

    count: int
    bytes: int  # their payloads' and topics' bytes, as Message.size counts them
    first_seq: int
    last_seq: int


@dataclass(slots=True)
class StoredState:
    """Everything a store holds, as ``load()`` returns it at start-up."""

    sessions: dict[str, StoredSession] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, SubscriptionOptions]] = field(default_factory=dict)
    deliveries: dict[str, dict[int, StoredDelivery]] = field(default_factory=dict)
    inbound_qos2: dict[str, set[int]] = field(default_factory=dict)
    retained: dict[str, Message] = field(default_factory=dict)
    # Queued messages not among ``deliveries``, by session (stores with queues_on_disk).
    queues: dict[str, StoredQueue] = field(default_factory=dict)


class StoreError(Exception):
    """The database cannot be used: corrupt, not a database, locked, or newer than this code."""


class StoreWriteError(Exception):
    """Applying or committing changes failed (disk full, I/O error): none of them is stored."""


class SessionsFenced(StoreWriteError):
    """Sessions this node wrote to belong to another node now (it took them over, or adopted
    them while this node was unreachable): their writes were refused (cluster mode)."""

    def __init__(self, client_ids: Iterable[str]) -> None:
        self.client_ids = sorted(client_ids)
        super().__init__(f"sessions now owned by another node, not written: "
                         f"{', '.join(self.client_ids[:5])}"
                         f"{' ...' if len(self.client_ids) > 5 else ''}")


class SessionStore(Protocol):
    # Whether the broker may leave queued messages to the store and read them back.
    queues_on_disk: bool

    def load(self) -> StoredState: ...
    def queued(self, client_id: str, from_seq: int, limit: int) -> list[StoredDelivery]:
        """Up to ``limit`` of the session's queued (not in flight) deliveries whose seq is at
        least ``from_seq``, oldest first, as applied so far."""
    def apply(self, changes: Sequence[Change]) -> None:
        """Write ``changes`` in order and commit them; if one is promised, make them and all
        before them durable before returning. Changes nothing was promised of may wait for a
        later commit (see ``flush_deadline``). On StoreWriteError nothing of this call or of
        what waited is stored."""
    def flush(self) -> None:
        """Make everything applied durable, what waited too."""
    def flush_deadline(self) -> float | None:
        """Monotonic time by which ``apply()`` must be called again (with no changes, if there
        are none) so that what waits is committed in time."""
    def close(self) -> None: ...

    def abandon(self) -> None:
        """Let go as a killed process would: what waits for a commit is lost, and the
        store stays as its last commit left it (``Broker.kill``)."""


class MemoryStore:
    """A :class:`SessionStore` in this process's memory: nothing survives the process, but
    a broker stopped and started again with the same store resumes every session.

    It keeps copies, never the broker's live objects, so it holds exactly what was applied.
    """

    # It holds copies in this process's memory: leaving queues to it would save nothing.
    queues_on_disk = False

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

    def queued(self, client_id: str, from_seq: int, limit: int) -> list[StoredDelivery]:
        deliveries = self._state.deliveries.get(client_id, {})
        found = sorted(seq for seq, delivery in deliveries.items()
                       if seq >= from_seq and delivery.state == QUEUED)
        return [replace(deliveries[seq]) for seq in found[:limit]]

    def apply(self, changes: Sequence[Change]) -> None:
        state = self._state
        for change in changes:
            match change:
                case SessionSaved(session):
                    state.sessions[session.client_id] = replace(session)
                case SessionDeleted(client_id):
                    state.sessions.pop(client_id, None)
                    state.subscriptions.pop(client_id, None)
                    state.deliveries.pop(client_id, None)
                    state.inbound_qos2.pop(client_id, None)
                case SubscriptionSaved(client_id, topic_filter, options):
                    state.subscriptions.setdefault(client_id, {})[topic_filter] = options
                case SubscriptionDeleted(client_id, topic_filter):
                    state.subscriptions.get(client_id, {}).pop(topic_filter, None)
                case DeliverySaved():
                    state.deliveries.setdefault(change.client_id, {})[change.seq] = (
                        change.stored())
                case DeliveryDeleted(client_id, seq):
                    state.deliveries.get(client_id, {}).pop(seq, None)
                case InboundQos2Added(client_id, packet_id):
                    state.inbound_qos2.setdefault(client_id, set()).add(packet_id)
                case InboundQos2Released(client_id, packet_id):
                    state.inbound_qos2.get(client_id, set()).discard(packet_id)
                case RetainedSaved(message):
                    state.retained[message.topic] = message
                case RetainedDeleted(topic):
                    state.retained.pop(topic, None)

    def flush(self) -> None:
        """Nothing waits: changes are complete when applied."""

    def flush_deadline(self) -> None:
        return None

    def close(self) -> None:
        """Nothing to release; the state stays for the next broker using this store."""

    def abandon(self) -> None:
        """What was applied stays: each apply() is its commit."""
