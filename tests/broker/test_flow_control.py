"""Publisher flow control: a publisher that outruns a live subscriber is paused instead of the
subscriber's queue overflowing, but only while that subscriber drains: one that stops reading
throttles no one for longer than the progress window (PROGRESS_WINDOW), and one that never
completed anything throttles no one at all."""

from __future__ import annotations

import socket

from mqlite.broker import Broker
from mqlite.protocol import Puback, Publish, Subscribe, Subscription, encode

from ..conftest import BrokerFactory
from .helpers import PahoClient, RawClient, wait_until


def _subscriber(broker: Broker, client_id: str, topic_filter: str, qos: int) -> RawClient:
    sub = RawClient(broker.address)
    sub.connect(client_id=client_id)
    sub.subscribe(topic_filter, qos)
    return sub


def test_fast_publisher_is_paused_not_dropped(make_broker: BrokerFactory) -> None:
    broker = make_broker(max_memory_queued_messages=20, max_inflight=2)
    sub = _subscriber(broker, "slow-sub", "flow", 1)
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


def test_stuck_subscriber_stops_throttling_once_it_makes_no_progress(
        make_broker: BrokerFactory) -> None:
    broker = make_broker(max_memory_queued_messages=20, max_inflight=2)
    stuck = _subscriber(broker, "stuck", "s", 1)  # and then it never reads or acks again
    other = PahoClient(broker.address, client_id="other")
    other.connect()
    other.subscribe("elsewhere", qos=1)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    flood = b"".join(encode(Publish(topic="s", payload=b"x", qos=1, packet_id=i + 1), 4)
                     for i in range(100))
    pub.send_bytes(flood + encode(Publish(topic="elsewhere", payload=b"through", qos=1,
                                          packet_id=500), 4))
    assert other.message(timeout=4).payload == b"through"
    assert broker.core.stats.messages_dropped > 0  # the stuck session paid, with its queue
    stats = broker.core.stats
    assert stats.publisher_pauses <= 1 and stats.stalled_sessions == stats.publisher_pauses
    stuck.close()


def test_a_never_reading_subscriber_does_not_hold_up_a_healthy_one(
        make_broker: BrokerFactory) -> None:
    """The healthy subscriber of the same publisher gets every message in order while the
    stuck one's queue overflows; the publisher was paused at most once, for the stuck session's
    first progress window, and that pause ended because it made no progress."""
    broker = make_broker(max_memory_queued_messages=20, max_inflight=2)
    stuck = _subscriber(broker, "never-reads", "s", 1)  # held open, never read
    healthy = _subscriber(broker, "healthy", "s", 0)
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    for i in range(200):  # one at a time: each PUBACK says the broker routed it
        pub.send(Publish(topic="s", payload=str(i).encode(), qos=1, packet_id=i + 1))
        assert isinstance(pub.receive(), Puback)
        message = healthy.receive()
        assert isinstance(message, Publish) and message.payload == str(i).encode()
    stats = broker.core.stats
    assert stats.messages_dropped > 0  # the stuck session's own queue took the loss
    assert stats.publisher_pauses <= 1
    assert stats.stalled_sessions == stats.publisher_pauses
    assert broker.core.sessions["never-reads"].stalled
    stuck.close()


def test_closing_connection_that_never_reads_is_cut_off(make_broker: BrokerFactory) -> None:
    """Closing flushes first, but not forever: after close_timeout the broker closes the
    socket with output still unsent. QoS 1 fills the broker's own buffer (QoS 0 would be
    dropped at the soft limit) beyond what the kernel's socket buffers absorb."""
    broker = make_broker(close_timeout=0.5, max_inflight=65_535, output_hard_limit=1 << 30)
    raw = RawClient(broker.address)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(client_id="deaf")
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="deaf", qos=1)]))
    raw.receive()
    pub = RawClient(broker.address)
    pub.connect(client_id="loud")
    count = 20_000
    pub.send_bytes(b"".join(encode(Publish(topic="deaf", payload=b"x" * 1000, qos=1,
                                           packet_id=i % 65_535 + 1), 4) for i in range(count)))
    wait_until(lambda: broker.core.stats.messages_sent >= count, timeout=20, what="routing")

    def deaf() -> list[int]:
        return [c.out_size for c in broker.connections if c.client_id == "deaf"]

    assert deaf()[0] > 1024 * 1024  # megabytes wait in the broker, not in the kernel
    raw.send_bytes(bytes.fromhex("c100"))  # PINGREQ with bad flags: the broker closes
    wait_until(lambda: not deaf(), timeout=3, what="the closing connection to be cut off")
