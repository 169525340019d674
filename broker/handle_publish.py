"""PUBLISH from a client, and the acknowledgements of both directions' QoS 1 and 2 flows."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mqlite.protocol import (
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    encode_puback_success,
)
from mqlite.protocol.qos_flow import Ack, Outcome, ack_outcome

from .connection import Connection
from .delivery import complete, pump
from .hooks import Access
from .message import Message
from .session import AWAIT_PUBCOMP, Session
from .sys_topics import own_sys_topic

if TYPE_CHECKING:
    from .services import BrokerServices


def handle_publish(core: BrokerServices, conn: Connection, packet: Publish, now: float) -> None:
    session = conn.session
    assert session is not None
    config = core.config
    topic = packet.topic
    properties = packet.properties
    if conn.version == 5:
        alias = properties.topic_alias
        if alias is not None:
            if alias > config.topic_alias_maximum:  # [MQTT-3.3.2-9]
                core.drop(conn, f"topic alias {alias} over the maximum",
                          ReasonCode.TOPIC_ALIAS_INVALID)
                return
            if topic:
                conn.inbound_aliases[alias] = topic
            elif alias in conn.inbound_aliases:
                topic = conn.inbound_aliases[alias]
            else:
                core.drop(conn, f"unknown topic alias {alias}", ReasonCode.PROTOCOL_ERROR)
                return
            properties = replace(properties, topic_alias=None)  # aliases are per connection
        if properties.subscription_identifier:  # [MQTT-3.3.4-6]
            core.drop(conn, "PUBLISH from a client carries a subscription identifier",
                      ReasonCode.PROTOCOL_ERROR)
            return
    qos = packet.qos
    if qos > config.max_qos:
        core.drop(conn, f"QoS {qos} over the broker's maximum", ReasonCode.QOS_NOT_SUPPORTED)
        return
    if packet.retain and not config.retain_available:
        core.drop(conn, "retain is not available", ReasonCode.RETAIN_NOT_SUPPORTED)
        return
    packet_id = packet.packet_id
    if qos == 2:
        if packet_id in session.inbound_qos2:
            conn.send(Pubrec(packet_id=packet_id))  # a resend: acknowledged, not routed again
            return
        if len(session.inbound_qos2) >= config.receive_maximum:
            core.drop(conn, "too many QoS 2 messages awaiting PUBREL",
                      ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)
            return
    core.stats.messages_received += 1
    if topic.startswith("$SYS") and not own_sys_topic(topic, conn.client_id):
        # Clients may not publish into the broker's own tree; MQTT 3.1.1 cannot say so.
        _acknowledge(conn, packet, ReasonCode.NOT_AUTHORIZED if conn.version == 5 else 0)
        return
    message: Message | None = Message(topic=topic, payload=packet.payload, qos=qos,
                                      retain=packet.retain, properties=properties,
                                      origin=conn.client_id)
    if core.hooks.active:
        info = conn.client_info
        assert info is not None and message is not None
        if not core.hooks.allowed(info, topic, Access.WRITE):
            # Refused: MQTT 5 says so (a refusing PUBREC ends the QoS 2 flow); MQTT 3.1.x
            # cannot, and a QoS 0 message is simply dropped.
            _acknowledge(conn, packet, ReasonCode.NOT_AUTHORIZED if conn.version == 5 else 0)
            return
        message = core.hooks.publish(info, message)
    matched = 0
    if message is not None:  # None: a hook dropped it; it is acknowledged all the same
        matched, congested = core.publish(message, now)
        if congested is not None:
            core.pause(conn, congested, now)
    if qos == 2:
        assert packet_id is not None
        session.inbound_qos2.add(packet_id)
        if session.persistent:
            core.store.add_inbound_qos2(session.client_id, packet_id)
    _acknowledge(conn, packet, ReasonCode.NO_MATCHING_SUBSCRIBERS
                 if not matched and conn.version == 5 else 0)


def _acknowledge(conn: Connection, packet: Publish, code: int) -> None:
    """PUBACK for QoS 1, PUBREC for QoS 2, nothing for QoS 0 [MQTT-3.3.4-1]."""
    if packet.packet_id is None:
        return
    if packet.qos == 1:
        if code:
            conn.send(Puback(packet_id=packet.packet_id, reason_code=code))
        else:
            conn.send_bytes(encode_puback_success(packet.packet_id))
    else:
        conn.send(Pubrec(packet_id=packet.packet_id, reason_code=code))


def handle_pubrel(core: BrokerServices, conn: Connection, packet: Pubrel, now: float) -> None:
    """Inbound QoS 2, step 2: forget the id and answer PUBCOMP, also for an unknown id."""
    session = conn.session
    assert session is not None
    packet_id = packet.packet_id
    if packet_id in session.inbound_qos2:
        session.inbound_qos2.discard(packet_id)
        if session.persistent:
            core.store.delete_inbound_qos2(session.client_id, packet_id)
        conn.send(Pubcomp(packet_id=packet_id))
    else:
        code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if conn.version == 5 else 0
        conn.send(Pubcomp(packet_id=packet_id, reason_code=code))


def handle_ack(core: BrokerServices, conn: Connection, packet: Puback | Pubrec | Pubcomp,
               now: float) -> None:
    """PUBACK, PUBREC or PUBCOMP for an outbound flow, as the protocol's transition table says:
    the wrong kind for the flow's QoS closes the connection [MQTT-4.8.0-1]; one for an id not in
    flight is ignored (a PUBREC is answered PUBREL, MQTT 5: 0x92)."""
    session = conn.session
    assert session is not None
    packet_id = packet.packet_id
    delivery = session.inflight.get(packet_id)
    if isinstance(packet, Puback):
        ack = Ack.PUBACK
    elif isinstance(packet, Pubcomp):
        ack = Ack.PUBCOMP
    else:
        ack = Ack.PUBREC_REFUSED if packet.reason_code >= 0x80 else Ack.PUBREC
    outcome = ack_outcome(delivery.state if delivery is not None else None, ack)
    if outcome is Outcome.COMPLETE:
        _finish(core, session, packet_id, now)
    elif outcome is Outcome.RELEASE:  # outbound QoS 2, step 2: never the PUBLISH again
        assert delivery is not None
        if delivery.state != AWAIT_PUBCOMP:  # [MQTT-4.3.3-1]
            delivery.state = AWAIT_PUBCOMP
            if session.persistent:
                core.store.save_delivery(session.client_id, delivery)
        conn.send(Pubrel(packet_id=packet_id))
    elif outcome is Outcome.VIOLATION:
        assert delivery is not None
        awaited = delivery.state.name.removeprefix("AWAIT_")
        core.drop(conn, f"{ack.value} for packet id {packet_id}, a QoS {delivery.qos} message "
                        f"awaiting {awaited}", ReasonCode.PROTOCOL_ERROR)
    elif ack in (Ack.PUBREC, Ack.PUBREC_REFUSED):  # a PUBREC for no flow
        code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if conn.version == 5 else 0
        conn.send(Pubrel(packet_id=packet_id, reason_code=code))


def _finish(core: BrokerServices, session: Session, packet_id: int, now: float) -> None:
    """A flow is over: free its place in the window for the next queued message."""
    complete(core, session, packet_id)
    pump(core, session, now)
