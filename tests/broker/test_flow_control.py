"""Publisher flow control: a publisher that outruns a live subscriber is paused instead of the
subscriber's queue overflowing; a subscriber that stops reading throttles no one for long."""

from __future__ import annotations

from mqlite.protocol import Puback, Publish, Subscribe, Subscription, encode

from ..conftest import BrokerFactory
from .helpers import PahoClient, RawClient


def test_fast_publisher_is_paused_not_dropped(make_broker: BrokerFactory) -> None:
    broker = make_broker(max_queued_messages=20, max_inflight=2)
    sub = RawClient(broker.address)
    sub.connect(client_id="slow-sub")
    sub.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="flow", qos=1)]))
    sub.receive()
    pub = RawClient(broker.address)
    pub.connect(client_id="fast-pub")
    pub.send_bytes(b"".join(encode(Publish(topic="flow", payload=str(i).encode(), qos=1,
                                           packet_id=i + 1), 4) for i in range(200)))
    received = []
    while len(received) < 200:  # 200 messages through a queue of 20: only if paused
        packet = sub.receive()
        assert isinstance(packet, Publish) and packet.packet_id is not None
        received.append(int(packet.payload))
        sub.send(Puback(packet_id=packet.packet_id))
    assert received == list(range(200))
    assert broker.core.stats.messages_dropped == 0


def test_stuck_subscriber_stops_throttling_after_the_stall_timeout(
        make_broker: BrokerFactory) -> None:
    broker = make_broker(max_queued_messages=20, max_inflight=2)
    stuck = RawClient(broker.address)
    stuck.connect(client_id="stuck")
    stuck.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="s", qos=1)]))
    stuck.receive()  # and then it never reads or acks again
    other = PahoClient(broker.address, client_id="other")
    other.connect()
    other.subscribe("elsewhere", qos=1)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    flood = b"".join(encode(Publish(topic="s", payload=b"x", qos=1, packet_id=i + 1), 4)
                     for i in range(100))
    pub.send_bytes(flood + encode(Publish(topic="elsewhere", payload=b"through", qos=1,
                                          packet_id=500), 4))
    assert other.message(timeout=4).payload == b"through"  # ~1 s stall timeout, then on
    assert broker.core.stats.messages_dropped > 0  # the stuck session paid, with its queue
