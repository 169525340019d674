"""queue_overflow = "reject": a QoS 1/2 message that would overflow a persistent session's
queue (or the broker's store) is refused to an MQTT 5 publisher with 0x97 and reaches no one;
an MQTT 3.1.1 publisher cannot be told, so the full session drops it and the others get it.
Real broker on port 0 with a SQLite store in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqlite.broker import Broker
from mqlite.protocol import (
    Properties,
    Puback,
    Publish,
    Pubrec,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
)

from ..conftest import BrokerFactory
from .helpers import RawClient

PERSISTENT = Properties(session_expiry_interval=3600)


def _offline_subscriber(broker: Broker, client_id: str, topic_filter: str = "q") -> None:
    sub = RawClient(broker.address, version=5)
    sub.connect(client_id=client_id, clean_start=False, properties=PERSISTENT)
    sub.subscribe(topic_filter, qos=1)
    sub.close()


def _online_subscriber(broker: Broker, *filters: str) -> RawClient:
    other = RawClient(broker.address, version=5)
    other.connect(client_id="other")
    other.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter=f, qos=1)
                                                     for f in filters]))
    assert isinstance(other.receive(), Suback)
    return other


def _publish(pub: RawClient, packet_id: int, payload: bytes, qos: int = 1,
             topic: str = "q", retain: bool = False) -> int:
    """The reason code of the PUBACK or PUBREC."""
    pub.send(Publish(topic=topic, payload=payload, qos=qos, packet_id=packet_id,
                     retain=retain))
    answer = pub.receive()
    assert isinstance(answer, Puback | Pubrec) and answer.packet_id == packet_id
    return answer.reason_code


@pytest.fixture
def full_broker(make_broker: BrokerFactory, tmp_path: Path) -> Broker:
    """A broker whose persistent session "full" has its queue of 3 full."""
    broker = make_broker(db=str(tmp_path / "reject.db"), max_queued_messages=3,
                         queue_overflow="reject")
    _offline_subscriber(broker, "full")
    pub = RawClient(broker.address, version=5)
    pub.connect(client_id="filler")
    for i in range(3):
        assert _publish(pub, i + 1, f"kept {i}".encode()) == 0
    pub.close()
    assert broker.core.sessions["full"].queued == 3
    return broker


@pytest.mark.parametrize("qos", [1, 2])
def test_reject_refuses_an_mqtt5_publisher_with_quota_exceeded_and_nobody_gets_it(
        full_broker: Broker, qos: int) -> None:
    other = _online_subscriber(full_broker, "q", "after")
    pub = RawClient(full_broker.address, version=5)
    pub.connect(client_id="v5-publisher")
    assert _publish(pub, 7, b"refused", qos=qos, retain=True) == ReasonCode.QUOTA_EXCEEDED
    # Not retained, not routed: the online subscriber's next message is the marker.
    assert _publish(pub, 8, b"marker", topic="after") == 0
    assert other.take(1)[0] == b"marker"
    assert not full_broker.core.retained.matching("q", 0.0)
    if qos == 2:  # the refusing PUBREC ended the flow: the same id is a new message
        assert 7 not in full_broker.core.sessions["v5-publisher"].inbound_qos2
    assert full_broker.core.stats.dropped["rejected_quota_exceeded"] == 1
    assert full_broker.core.sessions["full"].queued == 3


def test_reject_falls_back_to_dropping_the_newest_for_an_mqtt311_publisher(
        full_broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    other = _online_subscriber(full_broker, "q")
    pub = RawClient(full_broker.address, version=4)
    pub.connect(client_id="v3-publisher")
    with caplog.at_level("WARNING", logger="mqlite.broker"):
        assert _publish(pub, 1, b"told nothing") == 0  # 3.1.1 has no way to say why
    assert other.take(1)[0] == b"told nothing"  # the others get it
    assert full_broker.core.sessions["full"].queued == 3  # the full one dropped it
    assert full_broker.core.stats.dropped["queue_full"] == 1
    assert "cannot be told" in caplog.text
    back = RawClient(full_broker.address, version=5)
    assert back.connect(client_id="full", clean_start=False,
                        properties=PERSISTENT).session_present
    assert back.take(3) == [b"kept 0", b"kept 1", b"kept 2"]


def test_reject_applies_to_the_broker_wide_store_limit(make_broker: BrokerFactory,
                                                        tmp_path: Path) -> None:
    broker = make_broker(db=str(tmp_path / "store.db"), max_store_bytes=1000,
                         queue_overflow="reject")
    for name in ("a", "b"):
        _offline_subscriber(broker, name, f"{name}/q")
    pub = RawClient(broker.address, version=5)
    pub.connect(client_id="v5-publisher")
    payload = b"x" * 297  # 300 bytes with its topic
    assert _publish(pub, 1, payload, topic="a/q") == 0
    assert _publish(pub, 2, payload, topic="b/q") == 0
    assert _publish(pub, 3, payload, topic="a/q") == 0
    assert _publish(pub, 4, payload, topic="b/q") == ReasonCode.QUOTA_EXCEEDED  # 1,200 > 1,000
    assert broker.core.queued_bytes_stored == 900
    back = RawClient(broker.address, version=5)
    back.connect(client_id="a", clean_start=False, properties=PERSISTENT)
    assert back.take(2) == [payload, payload]
    assert broker.core.queued_bytes_stored == 300  # a drained: room again
    assert _publish(pub, 5, payload, topic="b/q") == 0


def test_a_full_store_drops_the_new_message_not_a_sessions_queue(
        make_broker: BrokerFactory, tmp_path: Path) -> None:
    """drop-oldest: at max_store_bytes the new message is dropped for the session it was for;
    that session's own queue (which others filled the store around) is kept whole."""
    broker = make_broker(db=str(tmp_path / "store.db"), max_store_bytes=1000)
    for name in ("small", "big"):
        _offline_subscriber(broker, name, f"{name}/q")
    pub = RawClient(broker.address, version=5)
    pub.connect(client_id="v5-publisher")
    payload = b"x" * 293  # 300 bytes with its topic ("small/q" is 7)
    assert _publish(pub, 1, payload, topic="small/q") == 0
    for packet_id in (2, 3):
        assert _publish(pub, packet_id, b"y" * 293, topic="big/q") == 0  # 896 bytes stored
    assert _publish(pub, 4, b"z" * 293, topic="small/q") == 0  # told nothing: not "reject"
    assert broker.core.sessions["small"].queued == 1
    assert broker.core.stats.dropped["queue_full"] == 1
    back = RawClient(broker.address, version=5)
    back.connect(client_id="small", clean_start=False, properties=PERSISTENT)
    assert back.take(1)[0] == payload
