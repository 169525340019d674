"""The sender's QoS flow table (spec 4.3, [MQTT-4.8.0-1])."""

from __future__ import annotations

import pytest

from mqlite.protocol.qos_flow import SENT_STATE, Ack, FlowState, Outcome, ack_outcome

S = FlowState


def test_sent_state_by_qos() -> None:
    assert SENT_STATE[1] is S.AWAIT_PUBACK
    assert SENT_STATE[2] is S.AWAIT_PUBREC


@pytest.mark.parametrize("state,ack,outcome", [
    (S.AWAIT_PUBACK, Ack.PUBACK, Outcome.COMPLETE),
    (S.AWAIT_PUBREC, Ack.PUBREC, Outcome.RELEASE),
    (S.AWAIT_PUBREC, Ack.PUBREC_REFUSED, Outcome.COMPLETE),
    (S.AWAIT_PUBCOMP, Ack.PUBREC, Outcome.RELEASE),
    (S.AWAIT_PUBCOMP, Ack.PUBCOMP, Outcome.COMPLETE),
])
def test_the_acks_each_flow_expects(state: FlowState, ack: Ack, outcome: Outcome) -> None:
    assert ack_outcome(state, ack) is outcome


@pytest.mark.parametrize("state,ack", [
    (S.AWAIT_PUBACK, Ack.PUBREC), (S.AWAIT_PUBACK, Ack.PUBREC_REFUSED),
    (S.AWAIT_PUBACK, Ack.PUBCOMP), (S.AWAIT_PUBREC, Ack.PUBACK), (S.AWAIT_PUBREC, Ack.PUBCOMP),
    (S.AWAIT_PUBCOMP, Ack.PUBACK), (S.AWAIT_PUBCOMP, Ack.PUBREC_REFUSED),
])
def test_mqtt_4_8_0_1_wrong_kind_is_a_violation(state: FlowState, ack: Ack) -> None:
    assert ack_outcome(state, ack) is Outcome.VIOLATION


@pytest.mark.parametrize("ack", list(Ack))
def test_no_flow_means_not_in_flight(ack: Ack) -> None:
    assert ack_outcome(None, ack) is Outcome.NOT_IN_FLIGHT
    assert ack_outcome(S.QUEUED, ack) is Outcome.NOT_IN_FLIGHT


def test_stored_states_are_plain_integers() -> None:
    """Deliveries are stored by their state's number; the table takes them as read back."""
    assert [int(s) for s in S] == [0, 1, 2, 3]
    assert ack_outcome(1, Ack.PUBACK) is Outcome.COMPLETE
