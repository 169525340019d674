"""The sender's side of a QoS 1 or 2 flow (spec 4.3): its states, and one table saying what each
acknowledgement may do in each state.

An acknowledgement of the wrong kind for a packet id in flight (PUBREC or PUBCOMP for a QoS 1
message, PUBACK for a QoS 2 one, PUBCOMP before PUBREC) is a protocol violation
[MQTT-4.8.0-1]; an acknowledgement for an id not in flight is harmless.
"""

from __future__ import annotations

from enum import Enum, IntEnum, StrEnum


class FlowState(IntEnum):
    """Where an outgoing message is, in the order a QoS 2 message goes through them. The values
    are stored (a persistent session's deliveries), so they never change."""

    QUEUED = 0  # waiting for a place in the in-flight window; no packet id yet
    AWAIT_PUBACK = 1  # QoS 1 PUBLISH sent
    AWAIT_PUBREC = 2  # QoS 2 PUBLISH sent
    AWAIT_PUBCOMP = 3  # QoS 2 PUBREC received, PUBREL sent


# The state of a message once its PUBLISH is sent, by QoS (a lookup, not a call: it is on
# every QoS 1/2 delivery's path).
SENT_STATE: dict[int, FlowState] = {1: FlowState.AWAIT_PUBACK, 2: FlowState.AWAIT_PUBREC}


class Ack(StrEnum):
    """An acknowledgement from the receiver. A PUBREC with a reason code of 0x80 or more
    refuses the message and ends its flow [MQTT-4.3.3]. (A str enum: it hashes as its string
    does, in C, where a plain Enum's hash is a Python call on every acknowledgement.)"""

    PUBACK = "PUBACK"
    PUBREC = "PUBREC"
    PUBREC_REFUSED = "refusing PUBREC"
    PUBCOMP = "PUBCOMP"


class Outcome(Enum):
    COMPLETE = "complete"  # the flow is over: its packet id is free again
    RELEASE = "release"  # send PUBREL; the flow now awaits PUBCOMP
    VIOLATION = "violation"  # the wrong acknowledgement for this flow: close the connection
    NOT_IN_FLIGHT = "not in flight"  # no flow has this id: ignore (PUBREC: PUBREL 0x92)


_S = FlowState
# Keyed by the state's number: a stored delivery's state is read back as a plain int.
_TRANSITIONS: dict[tuple[int, Ack], Outcome] = {
    (_S.AWAIT_PUBACK, Ack.PUBACK): Outcome.COMPLETE,
    (_S.AWAIT_PUBACK, Ack.PUBREC): Outcome.VIOLATION,
    (_S.AWAIT_PUBACK, Ack.PUBREC_REFUSED): Outcome.VIOLATION,
    (_S.AWAIT_PUBACK, Ack.PUBCOMP): Outcome.VIOLATION,
    (_S.AWAIT_PUBREC, Ack.PUBACK): Outcome.VIOLATION,
    (_S.AWAIT_PUBREC, Ack.PUBREC): Outcome.RELEASE,
    (_S.AWAIT_PUBREC, Ack.PUBREC_REFUSED): Outcome.COMPLETE,
    (_S.AWAIT_PUBREC, Ack.PUBCOMP): Outcome.VIOLATION,
    (_S.AWAIT_PUBCOMP, Ack.PUBACK): Outcome.VIOLATION,
    # A repeated PUBREC (the receiver did not get our PUBREL): send PUBREL again.
    (_S.AWAIT_PUBCOMP, Ack.PUBREC): Outcome.RELEASE,
    (_S.AWAIT_PUBCOMP, Ack.PUBREC_REFUSED): Outcome.VIOLATION,
    (_S.AWAIT_PUBCOMP, Ack.PUBCOMP): Outcome.COMPLETE,
}


def ack_outcome(state: int | None, ack: Ack) -> Outcome:
    """What ``ack`` does to a flow in ``state`` (a :class:`FlowState` or its stored number;
    ``None``: no flow has its packet id)."""
    if state is None or state == FlowState.QUEUED:
        return Outcome.NOT_IN_FLIGHT
    return _TRANSITIONS[state, ack]
