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


def deliver(core: BrokerServices, session: Session, message: Message, *, qos: int,
            retain: bool, subscription_ids: tuple[int, ...], now: float,
            cache: WireCache | None) -> Session | None:
    """Send, put in flight or queue one message for ``session``; the session if its queue is
    now congested (see RouteResult)."""
    if core.hooks.active and not core.hooks.allowed(core.client_info_of(session),
                                                    message.topic, Access.READ):
        return None  # a delivery the session may not read is skipped
    conn = session.connection
    online = conn is not None and conn.state == CONNECTED
    if qos == 0:
        if online:
            assert conn is not None
            if conn.out_size > core.config.output_soft_limit:
                core.stats.messages_dropped += 1  # a slow reader loses its own QoS 0 messages
            else:
                send_publish(core, conn, message, qos=0, retain=retain, packet_id=None,
                             dup=False, subscription_ids=subscription_ids, now=now, cache=cache)
        elif session.persistent and core.config.queue_qos0:
            enqueue(core, session, Delivery(session.take_seq(), message, 0, retain,
                                            subscription_ids))
        return None
    delivery = Delivery(session.take_seq(), message, qos, retain, subscription_ids)
    if (conn is not None and online and not session.queue
            and len(session.inflight) < window(core, conn)):
        start_flight(core, session, conn, delivery, now)
        return None
    return enqueue(core, session, delivery)


def window(core: BrokerServices, conn: Connection) -> int:
    return min(core.config.max_inflight, conn.client_receive_maximum)


def enqueue(core: BrokerServices, session: Session, delivery: Delivery) -> Session | None:
    """Append to the session's queue within its count and byte limits; the session if a QoS
    1/2 message took its live queue over the high mark (half full)."""
    config = core.config
    message = delivery.message
    size = len(message.payload) + len(message.topic)  # message.size, without the call
    queue = session.queue
    while queue and (len(queue) >= config.max_queued_messages
                     or session.queued_bytes + size > config.max_queued_bytes):
        if config.queue_overflow == "drop-newest":
            core.count_drop(session, "queue full, dropped the newest message", message)
            return None
        oldest = queue.popleft()
        session.queued_bytes -= oldest.message.size
        if session.persistent:
            core.store.delete_delivery(session.client_id, oldest.seq)
        core.count_drop(session, "queue full, dropped the oldest message", oldest.message)
    session.queue_append(delivery)
    session.queued_bytes += size
    if session.persistent:
        core.store.save_delivery(session.client_id, delivery)
    if (delivery.qos and len(session.queue) >= config.max_queued_messages // 2
            and session.connection is not None and not session.stalled):
        return session
    return None


def start_flight(core: BrokerServices, session: Session, conn: Connection, delivery: Delivery,
                 now: float) -> None:
    if delivery.message.expired(now):
        if session.persistent:
            core.store.delete_delivery(session.client_id, delivery.seq)
        return
    if delivery.qos == 0:
        send_publish(core, conn, delivery.message, qos=0, retain=delivery.retain,
                     packet_id=None, dup=False, subscription_ids=delivery.subscription_ids,
                     now=now, cache=None)
        if session.persistent:
            core.store.delete_delivery(session.client_id, delivery.seq, at_most_once=True)
        return
    packet_id = session.take_packet_id()
    delivery.packet_id = packet_id
    delivery.state = SENT_STATE[delivery.qos]
    session.inflight[packet_id] = delivery
    if session.persistent:
        core.store.save_delivery(session.client_id, delivery)
    if not send_publish(core, conn, delivery.message, qos=delivery.qos, retain=delivery.retain,
                        packet_id=packet_id, dup=False,
                        subscription_ids=delivery.subscription_ids, now=now, cache=None):
        complete(core, session, packet_id)  # too large for the client: discarded as if sent


def pump(core: BrokerServices, session: Session, now: float) -> None:
    """Move queued messages into flight while the window allows."""
    conn = session.connection
    if conn is None or conn.state != CONNECTED:
        return
    limit = window(core, conn)
    queue = session.queue
    inflight = session.inflight
    while queue and len(inflight) < limit:
        delivery = queue.popleft()
        message = delivery.message
        session.queued_bytes -= len(message.payload) + len(message.topic)  # message.size
        start_flight(core, session, conn, delivery, now)
    # Only a stalled session or a paused publisher has anything to undo here.
    if (session.stalled or core.paused) and len(queue) <= core.config.max_queued_messages // 4:
        session.stalled = False
        core.resume_publishers(session)


def complete(core: BrokerServices, session: Session, packet_id: int) -> None:
    """An outbound flow finished (PUBACK, PUBCOMP, or a PUBREC refusing it)."""
    delivery = session.inflight.pop(packet_id)
    session.completed += 1
    if session.persistent:
        core.store.delete_delivery(session.client_id, delivery.seq)


def resend_inflight(core: BrokerServices, session: Session, conn: Connection, now: float) -> None:
    """On resuming a session: every unacknowledged PUBLISH again with DUP, and every PUBREL,
    with their original packet ids, in their original order (spec 4.4)."""
    for packet_id, delivery in session.inflight.items():
        if delivery.state == AWAIT_PUBCOMP:
            conn.send(Pubrel(packet_id=packet_id))
        else:
            send_publish(core, conn, delivery.message, qos=delivery.qos,
                         retain=delivery.retain, packet_id=packet_id, dup=True,
                         subscription_ids=delivery.subscription_ids, now=now, cache=None,
                         allow_alias=False)
