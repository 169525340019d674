"""Outbound acknowledgements: PUBACK, PUBREC and PUBCOMP for the QoS 1 and 2 flows the broker
started towards a client, as the protocol's transition table says."""

from __future__ import annotations

from mqlite.protocol import Puback, Pubcomp, Pubrec, Pubrel, ReasonCode
from mqlite.protocol.qos_flow import Ack, Outcome, ack_outcome

from ..delivery import complete, pump
from ..services import BrokerServices, Context
from ..session import AWAIT_PUBACK, AWAIT_PUBCOMP, Session


def handle_ack(context: Context, packet: Puback | Pubrec | Pubcomp) -> None:
    """PUBACK, PUBREC or PUBCOMP for an outbound flow, as the protocol's transition table says:
    the wrong kind for the flow's QoS closes the connection [MQTT-4.8.0-1]; one for an id not in
    flight is ignored (a PUBREC is answered PUBREL, MQTT 5: 0x92)."""
    context.broker.stats.control_packets_received += 1
    broker, conn, session, now = context.broker, context.conn, context.session, context.now
    packet_id = packet.packet_id
    delivery = session.inflight.get(packet_id)
    if isinstance(packet, Puback):
        if delivery is not None and delivery.state == AWAIT_PUBACK:
            _finish(broker, session, packet_id, now)  # the common case, without the table
            return
        ack = Ack.PUBACK
    elif isinstance(packet, Pubcomp):
        ack = Ack.PUBCOMP
    else:
        ack = Ack.PUBREC_REFUSED if packet.reason_code >= 0x80 else Ack.PUBREC
    outcome = ack_outcome(delivery.state if delivery is not None else None, ack)
    if outcome is Outcome.COMPLETE:
        _finish(broker, session, packet_id, now)
    elif outcome is Outcome.RELEASE:  # outbound QoS 2, step 2: never the PUBLISH again
        assert delivery is not None
        if delivery.state != AWAIT_PUBCOMP:  # [MQTT-4.3.3-1]
            delivery.state = AWAIT_PUBCOMP
            broker.journal.delivery(session, delivery, promise=True)  # the PUBREL says so
        conn.send(Pubrel(packet_id=packet_id))
    elif outcome is Outcome.VIOLATION:
        assert delivery is not None
        awaited = delivery.state.name.removeprefix("AWAIT_")
        broker.drop(conn, f"{ack.value} for packet id {packet_id}, a QoS {delivery.qos} message "
                          f"awaiting {awaited}", ReasonCode.PROTOCOL_ERROR)
    elif ack in (Ack.PUBREC, Ack.PUBREC_REFUSED):  # a PUBREC for no flow
        code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if conn.version == 5 else 0
        conn.send(Pubrel(packet_id=packet_id, reason_code=code))


def _finish(broker: BrokerServices, session: Session, packet_id: int, now: float) -> None:
    """A flow is over: free its place in the window for the next queued message."""
    complete(broker, session, packet_id)
    session.progress_at = now
    session.stalled = False  # draining again: it may pause its publishers again
    pump(broker, session, now)
