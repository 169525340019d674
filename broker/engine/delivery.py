"""Delivery to one session: the in-flight window, the session's queue behind it (its limits
and overflow), moving the queue into flight, completing flows, and resending in-flight
messages on resumption."""

from __future__ import annotations

from mqlite.protocol import Pubrel
from mqlite.protocol.qos_flow import SENT_STATE

from ..config.broker_config import BrokerConfig
from ..hooks import Access
from ..message import Message
from .connection import CONNECTED, Connection
from .publish_encoding import WireCache, send_publish
from .services import BrokerServices
from .session import AWAIT_PUBCOMP, NOTHING_IN_FLIGHT, Delivery, Session
from .stats import ACL, EXPIRED, OUTPUT_FULL, QUEUE_FULL
from .stored_queue import hold, on_disk, refill


def deliver(broker: BrokerServices, session: Session, message: Message, qos: int,
            retain: bool, subscription_ids: tuple[int, ...], now: float,
            cache: WireCache | None) -> Session | None:
    """Send, put in flight or queue one message for ``session``; the session if its queue is
    now congested (see RouteResult). Called positionally on the hot path."""
    hooks = broker.hooks
    if hooks.checks_access and not hooks.allowed(broker.sessions.client_info_of(session),
                                                 message.topic, Access.READ):
        broker.stats.dropped[ACL] += 1
        return None  # a delivery the session may not read is skipped
    conn = session.connection
    online = conn is not None and conn.state == CONNECTED
    if qos == 0:
        if online:
            assert conn is not None
            if conn.out_size > broker.config.output_soft_limit:
                broker.stats.dropped[OUTPUT_FULL] += 1  # a slow reader loses its own QoS 0
            else:
                # qos, retain, packet_id, dup, subscription_ids, now, cache
                send_publish(broker, conn, message, 0, retain, None, False, subscription_ids,
                             now, cache)
        elif session.persistent and broker.config.queue_qos0:
            enqueue(broker, session, Delivery(session.take_seq(), message, 0, retain,
                                            subscription_ids))
        return None
    delivery = Delivery(session.take_seq(), message, qos, retain, subscription_ids)
    if (conn is not None and online and not session.queue and not session.stored_queued
            and len(session.inflight) < min(broker.config.max_inflight,
                                            conn.negotiated.receive_maximum)  # window()
            and (not (byte_limit := broker.config.max_inflight_bytes)
                 or session.inflight_bytes < byte_limit)):
        # Straight into flight: its first record, promised by the publisher's PUBACK/PUBREC.
        start_flight(broker, session, conn, delivery, now, promise=True)
        return None
    return enqueue(broker, session, delivery)


def window(broker: BrokerServices, conn: Connection) -> int:
    return min(broker.config.max_inflight, conn.negotiated.receive_maximum)


def queue_limits(config: BrokerConfig, disk: bool) -> tuple[int, int]:
    """Messages and bytes a session may queue: a queue the store holds (``disk``: on_disk())
    may be deeper than one held in memory."""
    if disk:
        return config.max_queued_messages, config.max_queued_bytes
    return config.max_memory_queued_messages, config.max_memory_queued_bytes


def overflows(broker: BrokerServices, session: Session, size: int) -> bool:
    """Whether a QoS 1/2 message of ``size`` bytes for ``session`` would find its queue, or
    the store, full (the ``reject`` policy asks before routing)."""
    queued = session.queued
    if queued:
        most, most_bytes = queue_limits(broker.config, on_disk(broker, session))
        if queued >= most or session.queued_bytes + size > most_bytes:
            return True
    store_limit = broker.config.max_store_bytes
    if not store_limit or session.expiry_interval <= 0:
        return False
    conn = session.connection
    if (not queued and conn is not None and conn.state == CONNECTED
            and len(session.inflight) < window(broker, conn)):
        return False  # straight into flight: not queued
    return broker.queued_bytes_stored + size > store_limit


def enqueue(broker: BrokerServices, session: Session, delivery: Delivery) -> Session | None:
    """Append to the session's queue within its count and byte limits and the store's; the
    session if a QoS 1/2 message took its live queue over the high mark."""
    config = broker.config
    message = delivery.message
    size = len(message.payload) + len(message.topic)  # message.size, without the call
    persistent = session.expiry_interval > 0
    disk = persistent and broker.store.queues_on_disk  # on_disk() and queue_limits() inline
    if disk:
        most, most_bytes = config.max_queued_messages, config.max_queued_bytes
    else:
        most, most_bytes = config.max_memory_queued_messages, config.max_memory_queued_bytes
    store_limit = config.max_store_bytes if persistent else 0
    while True:
        arrivals = session.arrivals
        queued = len(session.queue) + session.stored_queued + (len(arrivals) if arrivals else 0)
        full = bool(queued) and (queued >= most or session.queued_bytes + size > most_bytes)
        store_full = bool(store_limit) and broker.queued_bytes_stored + size > store_limit
        if not (full or store_full):
            break
        # "reject" refused what it could before routing; the rest (MQTT 3.1.1 publishers,
        # QoS 0, wills) is dropped as the newest. A full store drops the new message too:
        # the oldest of this session's would free only what this session holds.
        if store_full or config.queue_overflow != "drop-oldest":
            why = "the broker's store is full" if store_full else "queue full"
            if config.queue_overflow == "reject":
                why += " and its publisher cannot be told (MQTT 3.1.1, QoS 0 or a will)"
            broker.count_drop(session.client_id, f"{why}, dropped the newest message",
                              message, QUEUE_FULL)
            return None
        if not session.queue and not refill(broker, session):
            continue  # the store held fewer than counted: counted again
        oldest = session.queue.popleft()
        oldest_size = oldest.message.size
        session.queued_bytes -= oldest_size
        if persistent:
            broker.queued_bytes_stored -= oldest_size
        broker.journal.delivery_ended(session, oldest.seq, promise=False)
        broker.count_drop(session.client_id, "queue full, dropped the oldest message",
                          oldest.message, QUEUE_FULL)
    if disk or session.stored_queued:
        hold(broker, session, delivery, disk)
    else:
        session.queue_append(delivery)  # what hold() does for a queue held in memory
    session.queued_bytes += size
    if persistent:  # a session that keeps nothing makes no record
        broker.queued_bytes_stored += size
        broker.journal.delivery(session, delivery, promise=True)  # the publisher's ack says so
    if (delivery.qos and queued >= config.max_memory_queued_messages // 2
            and session.connection is not None and not session.stalled):
        return session
    return None


def start_flight(broker: BrokerServices, session: Session, conn: Connection, delivery: Delivery,
                 now: float, *, promise: bool) -> None:
    """Send a delivery, QoS 1/2 under a new packet id. ``promise``: its first record (see
    :mod:`~mqlite.broker.engine.journal`); one from the queue is promised for QoS 2 only,
    whose packet id must survive a crash, while a QoS 1 send lost is only sent again."""
    journal = broker.journal
    if delivery.message.expired(now):
        broker.stats.dropped[EXPIRED] += 1
        journal.delivery_ended(session, delivery.seq, promise=False)
        return
    hooks = broker.hooks
    if hooks.checks_access and not promise and not hooks.allowed(
            broker.sessions.client_info_of(session), delivery.message.topic, Access.READ):
        # From the queue: checked again now the client is known (a restored session's
        # deliveries were queued before it came back).
        broker.stats.dropped[ACL] += 1
        journal.delivery_ended(session, delivery.seq, promise=False)
        return
    if delivery.qos == 0:
        send_publish(broker, conn, delivery.message, qos=0, retain=delivery.retain,
                     packet_id=None, dup=False, subscription_ids=delivery.subscription_ids,
                     now=now, cache=None)
        # Sent again after a crash, a QoS 0 message would arrive twice.
        journal.delivery_ended(session, delivery.seq, promise=True)
        return
    packet_id = session.take_packet_id()
    delivery.packet_id = packet_id
    delivery.state = SENT_STATE[delivery.qos]
    inflight = session.inflight
    if not inflight:  # progress is owed from now (see BrokerCore.pause)
        session.progress_at = now
        if inflight is NOTHING_IN_FLIGHT:
            inflight = session.inflight = {}
    inflight[packet_id] = delivery
    session.inflight_bytes += len(delivery.message.payload)
    if session.expiry_interval > 0:
        journal.delivery(session, delivery, promise=promise or delivery.qos == 2)
    # qos, retain, packet_id, dup, subscription_ids, now, cache
    if not send_publish(broker, conn, delivery.message, delivery.qos, delivery.retain,
                        packet_id, False, delivery.subscription_ids, now, None):
        complete(broker, session, packet_id)  # too large for the client: discarded as if sent


def pump(broker: BrokerServices, session: Session, now: float) -> None:
    """Move queued messages into flight while the window allows, reading the next batch from
    the store when the memory's is used up."""
    conn = session.connection
    if conn is None or conn.state != CONNECTED:
        return
    limit = window(broker, conn)
    byte_limit = broker.config.max_inflight_bytes or 1 << 62
    persistent = session.expiry_interval > 0
    # session.inflight read each time: the first start_flight replaces the shared empty one.
    while len(session.inflight) < limit and session.inflight_bytes < byte_limit:
        if not session.queue and not (session.stored_queued and refill(broker, session)):
            break
        delivery = session.queue.popleft()
        message = delivery.message
        size = len(message.payload) + len(message.topic)  # message.size
        session.queued_bytes -= size
        if persistent:
            broker.queued_bytes_stored -= size
        start_flight(broker, session, conn, delivery, now, promise=False)
    # Only a paused publisher has anything to undo here.
    if broker.paused and session.queued <= broker.config.max_memory_queued_messages // 4:
        broker.resume_publishers(session)


def complete(broker: BrokerServices, session: Session, packet_id: int) -> None:
    """An outbound flow finished (PUBACK, PUBCOMP, or a PUBREC refusing it)."""
    delivery = session.inflight.pop(packet_id)
    session.inflight_bytes -= len(delivery.message.payload)
    if session.expiry_interval > 0:
        broker.journal.delivery_ended(session, delivery.seq, promise=False)


def resend_inflight(broker: BrokerServices, session: Session, conn: Connection, now: float) -> None:
    """On resuming a session: every unacknowledged PUBLISH again with DUP, and every PUBREL,
    with their original packet ids, in their original order (spec 4.4)."""
    for packet_id, delivery in session.inflight.items():
        if delivery.state == AWAIT_PUBCOMP:
            conn.send(Pubrel(packet_id=packet_id))
        else:
            send_publish(broker, conn, delivery.message, qos=delivery.qos,
                         retain=delivery.retain, packet_id=packet_id, dup=True,
                         subscription_ids=delivery.subscription_ids, now=now, cache=None,
                         allow_alias=False)
