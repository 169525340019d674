"""Queues held by the store. A persistent session on a disk store keeps in memory only the
next messages it is to send: none while it is offline, up to ``max_memory_queued_messages``
while it is connected (the bound of a queue held in memory; a live subscriber that keeps up
never reaches it, as its publishers are paused at half of it while it drains). The rest of its
queue stays in the database, and is read back one indexed range query per batch as the window
empties. An offline session then costs the same few hundred bytes however deep its queue.

The session's queue is three runs, in seq order (see
:class:`~mqlite.broker.engine.session.Session`):
``queue`` in memory; ``stored_queued`` messages held only by the store from ``stored_from`` on;
and ``arrivals``, queued behind those during this loop turn and held in memory until the
turn's commit has stored them. After each successful commit :func:`settle` turns the arrivals
into stored ones and trims the in-memory run to its cap. Only what a commit has stored is ever
let go of, so nothing queued lives nowhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .services import BrokerServices
from .session import Delivery, Session

log = logging.getLogger("mqlite.broker")

# Queued messages read from the store at a time.
REFILL_BATCH = 256


def on_disk(broker: BrokerServices, session: Session) -> bool:
    """Whether the session's queue may be left to the store."""
    return session.expiry_interval > 0 and broker.store.queues_on_disk


def hold(broker: BrokerServices, session: Session, delivery: Delivery, disk: bool) -> None:
    """Keep a newly queued delivery in memory, where its order says: behind what the store
    holds, until the commit (then settle() leaves it to the store). ``disk``: on_disk()."""
    if session.stored_queued:
        arrivals = session.arrivals
        if arrivals is None:
            arrivals = session.arrivals = []
        arrivals.append(delivery)
        broker.settling.add(session)
        return
    session.queue_append(delivery)
    if disk and (session.connection is None
                 or len(session.queue) > broker.config.max_memory_queued_messages):
        broker.settling.add(session)


def settle(broker: BrokerServices) -> None:
    """After a successful commit: what this turn queued is stored, so the memory of the sessions
    that queued it keeps only what a queue in memory may hold (none for an offline
    session)."""
    connected_cap = broker.config.max_memory_queued_messages
    for session in broker.settling:
        arrivals = session.arrivals
        if arrivals:
            session.stored_queued += len(arrivals)  # they follow the stored run
        session.arrivals = None
        if not on_disk(broker, session):
            continue
        cap = 0 if session.connection is None else connected_cap
        queue = session.queue
        while len(queue) > cap:
            session.stored_from = queue.pop().seq  # the stored run now begins with it
            session.stored_queued += 1
    broker.settling.clear()


def forget_unstored(broker: BrokerServices) -> None:
    """The turn's commit failed: the deliveries queued behind the stored run were not stored
    (and their publishers not acknowledged, so they send them again). They are let go of."""
    for session in broker.settling:
        arrivals = session.arrivals
        if arrivals:
            size = sum(delivery.message.size for delivery in arrivals)
            session.queued_bytes -= size
            if session.expiry_interval > 0:
                broker.queued_bytes_stored -= size
        session.arrivals = None
    broker.settling.clear()


def refill(broker: BrokerServices, session: Session, want: int = REFILL_BATCH) -> bool:
    """Bring the next of the queued messages the store holds into memory, up to ``want``;
    whether the in-memory queue now has any."""
    count = session.stored_queued
    if count:
        records = _read(broker, session, want)
        if records:
            session.queue_extend(records)
            session.stored_from = records[-1].seq + 1
        count -= len(records)
        if len(records) < want and count:
            # The store has fewer than counted (rows lost with a failed commit): go by it.
            log.error("session %s: %d queued messages were not found in the store",
                      session.client_id, count)
            count = 0
            _recount_bytes(broker, session)
        session.stored_queued = count
    if not count and session.arrivals:  # the stored run is used up: the arrivals come next
        session.queue_extend(session.arrivals)
        session.arrivals = None
    return bool(session.queue)


def load_all(broker: BrokerServices, session: Session) -> None:
    """Bring a session's whole queue into memory (it stops being persistent, and the store
    forgets it)."""
    while session.stored_queued or session.arrivals:
        refill(broker, session, max(REFILL_BATCH, session.stored_queued))


def peek(broker: BrokerServices, session: Session, count: int) -> Iterable[Delivery]:
    """The first ``count`` queued deliveries, without moving anything (for the admin API)."""
    head = list(session.queue)[:count]
    if len(head) < count and session.stored_queued:
        head += _read(broker, session, count - len(head))
    if len(head) < count and session.arrivals:
        head += session.arrivals[:count - len(head)]
    return head


def _read(broker: BrokerServices, session: Session, count: int) -> list[Delivery]:
    """The first ``count`` of the queued deliveries the store holds, as deliveries."""
    return [Delivery(r.seq, r.message, r.qos, r.retain, r.subscription_ids)
            for r in broker.store.queued(session.client_id, session.stored_from, count)]


def _recount_bytes(broker: BrokerServices, session: Session) -> None:
    size = sum(delivery.message.size for delivery in session.queue)
    size += sum(delivery.message.size for delivery in session.arrivals or ())
    if session.expiry_interval > 0:
        broker.queued_bytes_stored += size - session.queued_bytes
    session.queued_bytes = size
