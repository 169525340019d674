"""Inbound publishing: PUBLISH from a client, and the PUBREL of its QoS 2 flows."""

from __future__ import annotations

from dataclasses import replace

from mqlite.protocol import (
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    encode_puback_success,
)

from ...hooks import Access
from ...message import Message
from .. import packet_log
from ..connection import Connection
from ..routing import overflowing
from ..services import BrokerServices, Context
from ..stats import ACL, NO_SUBSCRIBERS, REJECTED, TOO_LARGE
from ..sys_topics import own_sys_topic


def handle_publish(context: Context, packet: Publish) -> None:
    """Admission: the topic (behind an alias, within a mount point), the broker's limits, a
    QoS 2 resend, the access checks, a cluster that cannot take it; then routing, and for
    QoS 1/2 :func:`_record_and_acknowledge`. What is refused is answered here (with the MQTT 5
    reason code, or by a disconnect where only that can say it)."""
    broker, conn, session = context.broker, context.conn, context.session
    config = broker.config
    topic = packet.topic
    properties = packet.properties
    if conn.version == 5:
        resolved = _resolve_v5(broker, conn, packet)
        if resolved is None:
            return
        topic, properties = resolved
    if conn.mount_point:  # the listener's clients publish within their mount point
        topic = conn.mount_point + topic
    qos = packet.qos
    limit = config.message_size_limit
    if qos > config.max_qos or (packet.retain and not config.retain_available) or \
            (limit and len(packet.payload) > limit):
        _over_limits(broker, conn, packet)
        return
    if qos == 2:
        if packet.packet_id in session.inbound_qos2:
            conn.send(Pubrec(packet_id=packet.packet_id))  # a resend: not routed again
            return
        # A bridge's session takes what its remote broker's window sends (at most 65,535
        # ids): MQTT 3.1.1 has no Receive Maximum to ask it for less.
        if len(session.inbound_qos2) >= config.receive_maximum and \
                session.client_id not in broker.sessions.internal:
            broker.drop(conn, "too many QoS 2 messages awaiting PUBREL",
                        ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)
            return
    stats = broker.stats
    stats.messages_received += 1
    if qos:
        stats.received_qos[qos] += 1
    stats.publish_bytes_received += len(packet.payload)
    if topic.startswith("$SYS") and not own_sys_topic(topic, conn.client_id):
        # Clients may not publish into the broker's own tree; MQTT 3.1.1 cannot say so.
        _acknowledge(broker, conn, packet,
                     ReasonCode.NOT_AUTHORIZED if conn.version == 5 else 0)
        return
    message: Message | None = Message(topic=topic, payload=packet.payload, qos=qos,
                                      retain=packet.retain, properties=properties,
                                      origin=conn.client_id, received_at=context.now)
    if broker.hooks.active:
        assert message is not None
        message = _hooks_admit(broker, conn, packet, message)
        if message is REFUSED:
            return
    if qos and (broker.clustered or config.queue_overflow == "reject") and \
            not _room_for(broker, conn, packet, topic, message):
        return
    # Route what was admitted (None: a hook dropped it; it is acknowledged all the same) and
    # pause the publisher if a live subscriber's queue is filling.
    matched = 0
    if message is not None:
        matched, congested = broker.publish(message, context.now)
        if congested is not None:
            broker.pause(conn, congested, context.now)
    if not matched:
        stats.dropped[NO_SUBSCRIBERS] += 1
    if qos:
        _record_and_acknowledge(context, packet, matched)


def _record_and_acknowledge(context: Context, packet: Publish, matched: int) -> None:
    """A routed QoS 1/2 message: record a QoS 2 flow, and acknowledge (in cluster mode,
    once Redis holds the forwards)."""
    broker, conn, session = context.broker, context.conn, context.session
    packet_id = packet.packet_id
    assert packet_id is not None
    qos = packet.qos
    if qos == 2:
        session.await_pubrel(packet_id)
        broker.journal.inbound_qos2(session, packet_id)
    # As _acknowledge, with the common PUBACK made at once.
    code = ReasonCode.NO_MATCHING_SUBSCRIBERS if not matched and conn.version == 5 else 0
    if qos == 2:
        conn.send(Pubrec(packet_id=packet_id, reason_code=code))
    elif code:
        conn.send(Puback(packet_id=packet_id, reason_code=code))
    else:
        if packet_log.SWITCH.on:
            packet_log.packet_out(conn.client_id, conn.peer, f"PUBACK id={packet_id}", 4)
        conn.send_bytes(encode_puback_success(packet_id))
        stats = broker.stats  # send() counts the others
        stats.control_packets_sent += 1
        stats.control_bytes_sent += 4
    if broker.clustered:
        broker.cluster.hold(conn, session, packet_id if qos == 2 else None)


def _room_for(broker: BrokerServices, conn: Connection, packet: Publish, topic: str,
              message: Message | None) -> bool:
    """Whether a QoS 1/2 message can be taken: a cluster cut off from Redis cannot reach
    other nodes' subscribers (or its retained messages), and the "reject" overflow policy
    refuses what a queue has no room for. What cannot is answered here."""
    if broker.clustered and not broker.cluster.available and \
            broker.cluster.needs_remote(topic, packet.retain):
        # Fail closed: not acknowledged; MQTT 3.1.1 can only be disconnected.
        if conn.version == 5:
            _acknowledge(broker, conn, packet, ReasonCode.UNSPECIFIED_ERROR)
        else:
            broker.drop(conn, "the cluster's Redis is unavailable")
        return False
    if (message is not None and broker.config.queue_overflow == "reject"
            and conn.version == 5 and (full := overflowing(broker, message)) is not None):
        # Refused before anyone gets it, so that the publisher's retry is no duplicate.
        broker.count_drop(conn.client_id, f"the queue of {full} (or the store) is full, "
                                          "refused with 0x97", message, REJECTED)
        _acknowledge(broker, conn, packet, ReasonCode.QUOTA_EXCEEDED)
        return False
    return True


# What _hooks_admit says of a message refused (and answered).
REFUSED = Message(topic="", payload=b"", qos=0, retain=False)


def _hooks_admit(broker: BrokerServices, conn: Connection, packet: Publish,
                 message: Message) -> Message | None:
    """The hooks' access check and rewrite: the message to route, None (a hook dropped it),
    or REFUSED."""
    hooks = broker.hooks
    info = conn.who()
    if hooks.checks_access and not hooks.allowed(info, message.topic, Access.WRITE):
        # Refused: MQTT 5 says so (a refusing PUBREC ends the QoS 2 flow); MQTT 3.1.x cannot,
        # and a QoS 0 message is simply dropped.
        broker.stats.dropped[ACL] += 1
        broker.denials.denied("PUBLISH", info, message.topic, Access.WRITE)
        _acknowledge(broker, conn, packet, ReasonCode.NOT_AUTHORIZED if conn.version == 5 else 0)
        return REFUSED
    if hooks.rewrites:
        return hooks.publish(info, message)
    return message


def _over_limits(broker: BrokerServices, conn: Connection, packet: Publish) -> None:
    """A PUBLISH over the broker's maximum QoS, retaining where retain is not available, or
    over the message size limit."""
    config = broker.config
    if packet.qos > config.max_qos:
        broker.drop(conn, f"QoS {packet.qos} over the broker's maximum",
                    ReasonCode.QOS_NOT_SUPPORTED)
    elif packet.retain and not config.retain_available:
        broker.drop(conn, "retain is not available", ReasonCode.RETAIN_NOT_SUPPORTED)
    else:
        # Not routed; the QoS flow completes, as mosquitto does (MQTT 5 is told why).
        broker.count_drop(conn.client_id, f"payload of {len(packet.payload)} bytes over the "
                                          f"message_size_limit of {config.message_size_limit}",
                          None, TOO_LARGE)
        _acknowledge(broker, conn, packet, ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR
                     if conn.version == 5 else 0)


def _resolve_v5(broker: BrokerServices, conn: Connection, packet: Publish
                ) -> tuple[str, Properties] | None:
    """MQTT 5: the topic behind a topic alias, and the properties to route (aliases are per
    connection); None when the connection was dropped for a bad alias or property."""
    topic = packet.topic
    properties = packet.properties
    alias = properties.topic_alias
    if alias is not None:
        if alias > broker.config.topic_alias_maximum:  # [MQTT-3.3.2-9]
            broker.drop(conn, f"topic alias {alias} over the maximum",
                        ReasonCode.TOPIC_ALIAS_INVALID)
            return None
        if topic:
            conn.own_negotiated().inbound_aliases[alias] = topic
        elif alias in conn.negotiated.inbound_aliases:
            topic = conn.negotiated.inbound_aliases[alias]
        else:
            broker.drop(conn, f"unknown topic alias {alias}", ReasonCode.PROTOCOL_ERROR)
            return None
        properties = replace(properties, topic_alias=None)
    if properties.subscription_identifier:  # [MQTT-3.3.4-6]
        broker.drop(conn, "PUBLISH from a client carries a subscription identifier",
                    ReasonCode.PROTOCOL_ERROR)
        return None
    return topic, properties


def _acknowledge(broker: BrokerServices, conn: Connection, packet: Publish,
                 code: int) -> None:
    """PUBACK for QoS 1, PUBREC for QoS 2, nothing for QoS 0 [MQTT-3.3.4-1]."""
    if packet.packet_id is None:
        return
    if packet.qos == 1:
        conn.send(Puback(packet_id=packet.packet_id, reason_code=code))
    else:
        conn.send(Pubrec(packet_id=packet.packet_id, reason_code=code))


def handle_pubrel(context: Context, packet: Pubrel) -> None:
    """Inbound QoS 2, step 2: forget the id and answer PUBCOMP, also for an unknown id."""
    conn, session = context.conn, context.session
    context.broker.stats.control_packets_received += 1
    packet_id = packet.packet_id
    if packet_id in session.inbound_qos2:
        session.inbound_qos2.discard(packet_id)
        context.broker.journal.inbound_qos2_released(session, packet_id)
        conn.send(Pubcomp(packet_id=packet_id))
    else:
        code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if conn.version == 5 else 0
        conn.send(Pubcomp(packet_id=packet_id, reason_code=code))
