"""Delivery to one session: the in-flight window, the session's queue behind it, moving the
queue into flight, completing flows, and resending in-flight messages on resumption."""

from __future__ import annotations

from mqlite.protocol import Pubrel
from mqlite.protocol.qos_flow import SENT_STATE

from .connection import CONNECTED, Connection
from .hooks import Access
from .message import Message
from .publish_encoding import WireCache, send_publish
from .services import BrokerServices
from .session import AWAIT_PUBCOMP, Delivery, Session
from .stats import ACL, EXPIRED, OUTPUT_FULL, QUEUE_FULL


def deliver(broker: BrokerServices, session: Session, message: Message, *, qos: int,
            retain: bool, subscription_ids: tuple[int, ...], now: float,
            cache: WireCache | None) -> Session | None:
    """Send, put in flight or queue one message for ``session``; the session if its queue is
    now congested (see RouteResult)."""
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
                send_publish(broker, conn, message, qos=0, retain=retain, packet_id=None,
                             dup=False, subscription_ids=subscription_ids, now=now, cache=cache)
        elif session.persistent and broker.config.queue_qos0:
            enqueue(broker, session, Delivery(session.take_seq(), message, 0, retain,
                                            subscription_ids))
        return None
    delivery = Delivery(session.take_seq(), message, qos, retain, subscription_ids)
    if (conn is not None and online and not session.queue
            and len(session.inflight) < window(broker, conn)
            and (not (byte_limit := broker.config.max_inflight_bytes)
                 or session.inflight_bytes < byte_limit)):
        # Straight into flight: its first record, promised by the publisher's PUBACK/PUBREC.
        start_flight(broker, session, conn, delivery, now, promise=True)
        return None
    return enqueue(broker, session, delivery)


def window(broker: BrokerServices, conn: Connection) -> int:
    return min(broker.config.max_inflight, conn.client_receive_maximum)


def enqueue(broker: BrokerServices, session: Session, delivery: Delivery) -> Session | None:
    """Append to the session's queue within its count and byte limits; the session if a QoS
    1/2 message took its live queue over the high mark (half full)."""
    config = broker.config
    message = delivery.message
    size = len(message.payload) + len(message.topic)  # message.size, without the call
    queue = session.queue
    while queue and (len(queue) >= config.max_queued_messages
                     or session.queued_bytes + size > config.max_queued_bytes):
        if config.queue_overflow == "drop-newest":
            broker.count_drop(session.client_id, "queue full, dropped the newest message",
                              message, QUEUE_FULL)
            return None
        oldest = queue.popleft()
        session.queued_bytes -= oldest.message.size
        broker.journal.delivery_ended(session, oldest.seq, promise=False)
        broker.count_drop(session.client_id, "queue full, dropped the oldest message",
                          oldest.message, QUEUE_FULL)
    session.queue_append(delivery)
    session.queued_bytes += size
    broker.journal.delivery(session, delivery, promise=True)  # the publisher's ack says so
    if (delivery.qos and len(session.queue) >= config.max_queued_messages // 2
            and session.connection is not None and not session.stalled):
        return session
    return None


def start_flight(broker: BrokerServices, session: Session, conn: Connection, delivery: Delivery,
                 now: float, *, promise: bool) -> None:
    """Send a delivery, QoS 1/2 under a new packet id. ``promise``: its first record (see
    :mod:`~mqlite.broker.journal`); one from the queue is promised for QoS 2 only, whose packet
    id must survive a crash, while a QoS 1 send lost is only sent again."""
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
    session.inflight[packet_id] = delivery
    session.inflight_bytes += len(delivery.message.payload)
    journal.delivery(session, delivery, promise=promise or delivery.qos == 2)
    if not send_publish(broker, conn, delivery.message, qos=delivery.qos, retain=delivery.retain,
                        packet_id=packet_id, dup=False,
                        subscription_ids=delivery.subscription_ids, now=now, cache=None):
        complete(broker, session, packet_id)  # too large for the client: discarded as if sent


def pump(broker: BrokerServices, session: Session, now: float) -> None:
    """Move queued messages into flight while the window allows."""
    conn = session.connection
    if conn is None or conn.state != CONNECTED:
        return
    limit = window(broker, conn)
    byte_limit = broker.config.max_inflight_bytes or 1 << 62
    queue = session.queue
    inflight = session.inflight
    while queue and len(inflight) < limit and session.inflight_bytes < byte_limit:
        delivery = queue.popleft()
        message = delivery.message
        session.queued_bytes -= len(message.payload) + len(message.topic)  # message.size
        start_flight(broker, session, conn, delivery, now, promise=False)
    # Only a stalled session or a paused publisher has anything to undo here.
    if (session.stalled or broker.paused) and len(queue) <= broker.config.max_queued_messages // 4:
        session.stalled = False
        broker.resume_publishers(session)


def complete(broker: BrokerServices, session: Session, packet_id: int) -> None:
    """An outbound flow finished (PUBACK, PUBCOMP, or a PUBREC refusing it)."""
    delivery = session.inflight.pop(packet_id)
    session.inflight_bytes -= len(delivery.message.payload)
    session.completed += 1
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
