"""Session lifetime (spec checklist A4, B 67) and a restart with the same store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqlite.broker import Broker, MemoryStore, SessionStore, SQLiteStore
from mqlite.broker.engine.session import Delivery, Session
from mqlite.broker.message import Message
from mqlite.protocol import (
    Disconnect,
    PacketIdsExhausted,
    Properties,
    Puback,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Will,
)

from ..conftest import BrokerFactory
from .helpers import PahoClient, RawClient, wait_until


def test_mqtt_4_1_0_2_v5_session_expires(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="brief", clean_start=False,
                properties=Properties(session_expiry_interval=1))
    raw.send(Disconnect())
    raw.expect_closed()
    assert "brief" in broker.core.sessions
    wait_until(lambda: "brief" not in broker.core.sessions, timeout=4, what="expiry")


def test_v5_session_expiry_zero_ends_with_the_connection(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="zero", clean_start=False)
    raw.close()
    wait_until(lambda: "zero" not in broker.core.sessions, what="the session to end")


def test_mqtt_3_14_2_2_disconnect_may_not_turn_on_expiry(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="sneaky")
    raw.send(Disconnect(properties=Properties(session_expiry_interval=60)))
    assert raw.expect_closed() == [Disconnect(reason_code=0x82)]


def test_disconnect_can_shorten_expiry(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="shorten", clean_start=False,
                properties=Properties(session_expiry_interval=300))
    raw.send(Disconnect(properties=Properties(session_expiry_interval=0)))
    raw.expect_closed()
    wait_until(lambda: "shorten" not in broker.core.sessions, what="the session to end")


def test_v311_clean_session_discards_the_previous_session(broker: Broker) -> None:
    raw = RawClient(broker.address)
    raw.connect(client_id="wipe", clean_start=False)
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="a")]))
    raw.receive()
    raw.close()
    clean = RawClient(broker.address)
    assert clean.connect(client_id="wipe", clean_start=True).session_present is False
    assert broker.core.sessions["wipe"].subscriptions == {}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_restart_with_the_same_store_resumes_sessions(make_broker: BrokerFactory, kind: str,
                                                      tmp_path: Path) -> None:
    """Everything a persistent session holds survives a broker stop and start: its
    subscriptions, its queue, its in-flight QoS 1 and 2 messages (resent with DUP in order),
    its inbound QoS 2 ids, and the retained messages."""
    memory = MemoryStore()

    def store() -> SessionStore:
        return memory if kind == "memory" else SQLiteStore(str(tmp_path / "restart.db"))

    broker = make_broker(store=store())
    sub = RawClient(broker.address)
    sub.connect(client_id="durable", clean_start=False)
    sub.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="d/#", qos=2)]))
    assert isinstance(sub.receive(), Suback)
    pub = PahoClient(broker.address, client_id="pub")
    pub.connect()
    pub.publish("d/1", b"in flight qos1", qos=1)
    pub.publish("d/retained", b"kept", qos=2, retain=True)
    first, second = sub.receive(), sub.receive()
    assert isinstance(first, Publish) and isinstance(second, Publish)
    sub.send(Puback(packet_id=first.packet_id))  # type: ignore[arg-type]
    sub.send(Pubrec(packet_id=second.packet_id))  # type: ignore[arg-type]
    assert sub.receive() == Pubrel(packet_id=second.packet_id)  # type: ignore[arg-type]
    sub.close()
    pub.publish("d/2", b"queued", qos=2)
    inbound = RawClient(broker.address)
    inbound.connect(client_id="inbound", clean_start=False)
    inbound.send(Publish(topic="x", payload=b"", qos=2, packet_id=5))
    assert inbound.receive() == Pubrec(packet_id=5)
    inbound.close()
    pub.disconnect()
    broker.stop()

    broker = make_broker(store=store())
    again = RawClient(broker.address)
    assert again.connect(client_id="durable", clean_start=False).session_present
    assert again.receive() == Pubrel(packet_id=second.packet_id)  # type: ignore[arg-type]
    queued = again.receive()
    assert isinstance(queued, Publish) and (queued.payload, queued.qos) == (b"queued", 2)
    late = RawClient(broker.address)
    late.connect(client_id="late")
    late.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="d/retained")]))
    late.receive()
    retained = late.receive()
    assert isinstance(retained, Publish) and retained.payload == b"kept" and retained.retain
    back = RawClient(broker.address)
    back.connect(client_id="inbound", clean_start=False)
    back.send(Publish(topic="x", payload=b"", qos=2, packet_id=5, dup=True))
    assert back.receive() == Pubrec(packet_id=5)  # still known: not routed a second time


def test_graceful_stop_sends_v5_server_shutting_down(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    watcher = RawClient(broker.address)
    watcher.connect(client_id="watch", clean_start=False)
    watcher.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="w", qos=1)]))
    watcher.receive()
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="v5", will=Will(topic="w", payload=b"should not be sent", qos=1))
    broker.stop()
    assert raw.expect_closed() == [Disconnect(reason_code=0x8B)]
    assert watcher.expect_closed() == []  # no will was published at shutdown


def test_v311_persistent_sessions_expire_only_when_configured(make_broker: BrokerFactory) -> None:
    """MQTT 3.1.1 persistent sessions never expire by default; session_expiry (the broker
    command's --session-expiry) limits them, like mosquitto's persistent_client_expiration."""
    forever = make_broker()
    limited = make_broker(session_expiry=1)
    for broker in (forever, limited):
        raw = RawClient(broker.address)
        raw.connect(client_id="old-style", clean_start=False)
        raw.send(Disconnect())
        raw.expect_closed()
    wait_until(lambda: "old-style" not in limited.core.sessions, timeout=4, what="expiry")
    assert forever.core.sessions["old-style"].expiry_interval == 0xFFFF_FFFF


def test_stop_during_start_up_is_not_lost() -> None:
    """A stop() (as from a SIGTERM handler) racing with start-up still stops the broker."""
    import threading

    for _ in range(20):
        broker = Broker(port=0)
        runner = threading.Thread(target=broker.serve_forever)
        runner.start()
        broker.stop()
        runner.join(5)
        assert not runner.is_alive(), "stop() during start-up was ignored"


def test_one_sessions_queue_is_never_anothers(broker: Broker) -> None:
    """Sessions with nothing queued share one empty queue until their first message; a
    message queued for one offline session shows up in its queue only."""
    for client_id in ("first", "second"):
        raw = RawClient(broker.address)
        raw.connect(client_id=client_id, clean_start=False)
        if client_id == "first":
            raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="only/1",
                                                                        qos=1)]))
            assert isinstance(raw.receive(), Suback)
        raw.send(Disconnect())
        raw.expect_closed()
    pub = RawClient(broker.address)
    pub.connect(client_id="pub")
    pub.send(Publish(topic="only/1", payload=b"m", qos=1, packet_id=1))
    assert isinstance(pub.receive(), Puback)
    sessions = broker.core.sessions
    assert [d.message.payload for d in sessions["first"].queue] == [b"m"]
    assert len(sessions["second"].queue) == 0
    late = RawClient(broker.address)
    late.connect(client_id="late", clean_start=False)
    assert len(sessions["late"].queue) == 0


def test_outbound_packet_ids_skip_those_in_flight_and_cycle() -> None:
    session = Session("ids", 4, 0)
    session.inflight = {}  # its own, as start_flight gives it: not the shared empty one
    message = Message(topic="t", payload=b"", qos=1, retain=False)
    taken = []
    for seq in range(3):
        packet_id = session.take_packet_id()
        session.inflight[packet_id] = Delivery(seq, message, 1, False)
        taken.append(packet_id)
    assert taken == [1, 2, 3]
    del session.inflight[2]
    assert session.take_packet_id() == 4, "a just-released id is not reused at once"
    session.next_packet_id = 65_535
    assert session.take_packet_id() == 65_535
    assert session.take_packet_id() == 2, "wraps to 1, which is in flight, then takes 2"
    session.inflight = {i: Delivery(i, message, 1, False) for i in range(1, 65_536)}
    with pytest.raises(PacketIdsExhausted):
        session.take_packet_id()
