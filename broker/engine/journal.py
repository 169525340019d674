"""The durability journal: every change of persistent state is recorded here once, where the
state changes, as a typed change. At the end of each loop turn the store applies the turn's
changes and commits them, before that turn's packets are written.

Each change carries ``promise``: true when a peer is about to be told of it (the PUBACK or
PUBREC of a stored message, the CONNACK of a persistent session, a SUBACK or UNSUBACK, a
PUBCOMP, an outbound QoS 2 packet id or PUBREL, a queued QoS 0 message sent). A turn with a
promised change is synced to disk before its packets leave; one without may leave its queue
rows to a later commit (see :mod:`mqlite.broker.storage.sqlite_store`), since losing them
costs at most a redelivery, which QoS 1 allows.

Whether a session records anything is decided here and nowhere else: a session is stored while
it is persistent (``Session.persistent``); changes of a session that is not are not recorded.
A message body travels with the first delivery or retained change that refers to it; the store
writes it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mqlite.protocol import Will

from ..message import Message
from .session import Delivery, Session, SubscriptionOptions


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


class SessionSaved(NamedTuple):
    session: StoredSession
    promise: bool


class SessionDeleted(NamedTuple):
    """The session goes with its subscriptions, deliveries and inbound QoS 2 ids."""

    client_id: str
    promise: bool


class SubscriptionSaved(NamedTuple):
    client_id: str
    topic_filter: str
    options: SubscriptionOptions
    promise: bool


class SubscriptionDeleted(NamedTuple):
    client_id: str
    topic_filter: str
    promise: bool


class DeliverySaved(NamedTuple):
    """A delivery queued, or its new in-flight step (packet id and state). Its fields are the
    delivery's own, flat: one object per change on the QoS 1/2 path, not two."""

    client_id: str
    seq: int
    message: Message
    qos: int
    retain: bool
    packet_id: int | None
    state: int
    subscription_ids: tuple[int, ...]
    promise: bool

    def stored(self) -> StoredDelivery:
        return StoredDelivery(seq=self.seq, message=self.message, qos=self.qos,
                              retain=self.retain, packet_id=self.packet_id, state=self.state,
                              subscription_ids=self.subscription_ids)


class DeliveryDeleted(NamedTuple):
    client_id: str
    seq: int
    promise: bool


class InboundQos2Added(NamedTuple):
    client_id: str
    packet_id: int
    promise: bool


class InboundQos2Released(NamedTuple):
    client_id: str
    packet_id: int
    promise: bool


class RetainedSaved(NamedTuple):
    message: Message
    promise: bool


class RetainedDeleted(NamedTuple):
    topic: str
    promise: bool


Change = (SessionSaved | SessionDeleted | SubscriptionSaved | SubscriptionDeleted
          | DeliverySaved | DeliveryDeleted | InboundQos2Added | InboundQos2Released
          | RetainedSaved | RetainedDeleted)


class Journal:
    """The changes of the current loop turn, in the order they were made."""

    __slots__ = ("changes",)

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def take(self) -> list[Change]:
        """The turn's changes, for the store to apply; the journal starts empty again."""
        changes, self.changes = self.changes, []
        return changes

    # -- sessions: the one place that decides what a session records -----------------------

    def session(self, session: Session, *, promise: bool) -> None:
        """The session's stored record is now as ``session`` is: saved if it is persistent,
        deleted if it was stored and no longer is (a clean start, an expiry set to 0)."""
        if session.persistent:
            session.stored = True
            will = session.will or session.pending_will
            self.changes.append(SessionSaved(StoredSession(
                client_id=session.client_id, protocol_version=session.protocol_version,
                expiry_interval=session.expiry_interval, will=will,
                will_delay=(will.properties.will_delay_interval or 0) if will else 0,
                disconnected_at=session.disconnected_at), promise))
        elif session.stored:
            self.session_ended(session, promise=promise)

    def session_ended(self, session: Session, *, promise: bool) -> None:
        if session.stored:
            session.stored = False
            self.changes.append(SessionDeleted(session.client_id, promise))

    def subscription(self, session: Session, topic_filter: str, options: SubscriptionOptions,
                     ) -> None:
        """Subscribed (or re-subscribed): promised, a SUBACK says so."""
        if session.persistent:
            self.changes.append(SubscriptionSaved(session.client_id, topic_filter, options,
                                                  True))

    def unsubscribed(self, session: Session, topic_filter: str) -> None:
        """Promised: an UNSUBACK says so."""
        if session.persistent:
            self.changes.append(SubscriptionDeleted(session.client_id, topic_filter, True))

    def delivery(self, session: Session, delivery: Delivery, *, promise: bool) -> None:
        """A delivery queued, or moved to its next in-flight step."""
        if session.expiry_interval > 0:  # session.persistent, without the call: hot path
            self.changes.append(DeliverySaved(
                session.client_id, delivery.seq, delivery.message, delivery.qos,
                delivery.retain, delivery.packet_id, delivery.state, delivery.subscription_ids,
                promise))

    def delivery_ended(self, session: Session, seq: int, *, promise: bool) -> None:
        """Completed, dropped or expired; ``promise`` when it was a QoS 0 message sent, which
        sent again after a crash would arrive twice."""
        if session.expiry_interval > 0:  # session.persistent, without the call: hot path
            self.changes.append(DeliveryDeleted(session.client_id, seq, promise))

    def inbound_qos2(self, session: Session, packet_id: int) -> None:
        """An inbound QoS 2 id awaiting PUBREL: promised by the PUBREC."""
        if session.persistent:
            self.changes.append(InboundQos2Added(session.client_id, packet_id, True))

    def inbound_qos2_released(self, session: Session, packet_id: int) -> None:
        """Promised by the PUBCOMP."""
        if session.persistent:
            self.changes.append(InboundQos2Released(session.client_id, packet_id, True))

    # -- retained messages, which belong to no session ----------------------------------------

    def retained(self, message: Message) -> None:
        """Promised when the publisher is told (QoS 1 or 2)."""
        self.changes.append(RetainedSaved(message, message.qos > 0))

    def retained_deleted(self, topic: str, *, promise: bool) -> None:
        self.changes.append(RetainedDeleted(topic, promise))
