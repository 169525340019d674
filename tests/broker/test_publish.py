"""PUBLISH flows and routing (spec checklist A5-A8, B 72-81)."""

from __future__ import annotations

import threading

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqlite.broker import Broker
from mqlite.protocol import (
    Connack,
    Disconnect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
)

from ..conftest import BrokerFactory
from .helpers import PahoClient, RawClient, props


def _pair(broker: Broker, version: int) -> tuple[PahoClient, PahoClient]:
    sub = PahoClient(broker.address, client_id="sub", version=version)
    pub = PahoClient(broker.address, client_id="pub", version=version)
    sub.connect()
    pub.connect()
    return sub, pub


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mqtt_4_6_0_5_qos_flows_in_order(broker: Broker, version: int, qos: int) -> None:
    sub, pub = _pair(broker, version)
    sub.subscribe("orders/#", qos=2)
    for i in range(50):
        pub.publish(f"orders/{i % 3}", str(i).encode(), qos=qos)
    received = [sub.message() for _ in range(50)]
    assert [int(m.payload) for m in received] == list(range(50))
    assert {m.qos for m in received} == {qos}
    assert not any(m.retain or m.dup for m in received)


def test_mqtt_3_8_4_6_delivered_qos_is_the_minimum(broker: Broker, version: int) -> None:
    sub, pub = _pair(broker, version)
    sub.subscribe("down", qos=1)
    pub.publish("down", b"x", qos=2)
    assert sub.message().qos == 1


def test_mqtt_3_3_5_1_overlapping_subscriptions_one_copy_highest_qos(
        broker: Broker, version: int) -> None:
    sub, pub = _pair(broker, version)
    sub.subscribe([("a/+", 0), ("a/#", 1), ("#", 0)])
    pub.publish("a/b", b"once", qos=2)
    message = sub.message()
    assert (message.payload, message.qos) == (b"once", 1)
    sub.no_message()


def test_mqtt_3_3_4_3_all_matching_subscription_identifiers(broker: Broker) -> None:
    sub, pub = _pair(broker, 5)
    sub.client.subscribe("s/+", 1, properties=props(PacketTypes.SUBSCRIBE,
                                                   SubscriptionIdentifier=11))
    sub.wait("subscribe")
    sub.client.subscribe("s/#", 0, properties=props(PacketTypes.SUBSCRIBE,
                                                   SubscriptionIdentifier=22))
    sub.wait("subscribe")
    pub.publish("s/x", b"ids", qos=1)
    message = sub.message()
    assert sorted(message.properties.SubscriptionIdentifier) == [11, 22]


def test_mqtt_4_7_2_1_wildcards_do_not_match_dollar_topics(broker: Broker) -> None:
    """Robustness B5 19: $test/x goes to $test/# only; a client may not publish to $SYS."""
    sub, pub = _pair(broker, 5)
    dollar = PahoClient(broker.address, client_id="dollar", version=5)
    dollar.connect()
    sub.subscribe([("#", 1), ("+/x", 1)])
    dollar.subscribe("$test/#", qos=1)
    pub.publish("$test/x", b"dollar", qos=1)
    assert dollar.message().payload == b"dollar"
    sub.no_message()
    assert pub.publish("$SYS/broker/fake", b"x", qos=1) == ReasonCode.NOT_AUTHORIZED


def test_mqtt_3_8_4_3_resubscribing_replaces(broker: Broker, version: int) -> None:
    sub, pub = _pair(broker, version)
    sub.subscribe("r", qos=0)
    sub.subscribe("r", qos=2)
    pub.publish("r", b"x", qos=2)
    assert sub.message().qos == 2
    sub.no_message()


def test_mqtt_3_10_4_unsubscribe(broker: Broker, version: int) -> None:
    sub, pub = _pair(broker, version)
    sub.subscribe("u/#", qos=1)
    sub.client.unsubscribe(["u/#", "never/subscribed"])
    codes = sub.wait("unsubscribe")
    if version == 5:
        assert [c.value for c in codes] == [0x00, 0x11]
    pub.publish("u/1", b"x", qos=1)
    sub.no_message()


def test_mqtt_3_8_3_3_no_local(broker: Broker) -> None:
    client = PahoClient(broker.address, client_id="self", version=5)
    client.connect()
    client.subscribe([("echo", SubscribeOptions(qos=1, noLocal=True)),
                      ("echo/#", SubscribeOptions(qos=0))])
    client.publish("echo", b"mine", qos=1)
    message = client.message()  # only through echo/#, which is not No Local
    assert (message.payload, message.qos) == (b"mine", 0)
    client.no_message()


def test_v5_properties_pass_through_unaltered(broker: Broker) -> None:
    """[MQTT-3.3.2-17] [MQTT-3.3.2-18] user properties in order; [MQTT-3.3.2-4],
    [MQTT-3.3.2-20] payload format and content type; [MQTT-3.3.2-15/16] request/response."""
    sub, pub = _pair(broker, 5)
    sub.subscribe("req", qos=1)
    pub.publish("req", b"{}", qos=1, properties=props(
        PacketTypes.PUBLISH, UserProperty=[("z", "1"), ("a", "2"), ("z", "3")],
        ContentType="application/json", PayloadFormatIndicator=1,
        ResponseTopic="replies/7", CorrelationData=b"\x07"))
    p = sub.message().properties
    assert p.UserProperty == [("z", "1"), ("a", "2"), ("z", "3")]
    assert (p.ContentType, p.PayloadFormatIndicator) == ("application/json", 1)
    assert (p.ResponseTopic, p.CorrelationData) == ("replies/7", b"\x07")


def test_v5_puback_no_matching_subscribers(broker: Broker) -> None:
    pub = PahoClient(broker.address, client_id="lonely", version=5)
    pub.connect()
    assert pub.publish("nobody/listens", b"x", qos=1) == ReasonCode.NO_MATCHING_SUBSCRIBERS


def test_mqtt_4_4_0_1_unacknowledged_qos1_redelivered_with_dup(
        broker: Broker, version: int) -> None:
    properties = Properties(session_expiry_interval=300) if version == 5 else Properties()
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id="dup", clean_start=False, properties=properties)
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="d", qos=1)]))
    assert isinstance(raw.receive(), Suback)
    pub = PahoClient(broker.address, client_id="pub", version=version)
    pub.connect()
    pub.publish("d", b"first", qos=1)
    pub.publish("d", b"second", qos=1)
    first, second = raw.receive(), raw.receive()
    assert isinstance(first, Publish) and isinstance(second, Publish)
    assert not first.dup
    raw.send(Puback(packet_id=first.packet_id))  # type: ignore[arg-type]
    raw.close()  # second stays unacknowledged
    again = RawClient(broker.address, version=version)
    assert again.connect(client_id="dup", clean_start=False,
                         properties=properties).session_present
    resent = again.receive()
    assert isinstance(resent, Publish)
    assert (resent.dup, resent.packet_id, resent.payload) == (True, second.packet_id, b"second")
    again.send(Puback(packet_id=second.packet_id))  # type: ignore[arg-type]
    again.ping()


def test_mqtt_4_3_3_1_qos2_after_pubrec_only_pubrel_is_resent(broker: Broker) -> None:
    raw = RawClient(broker.address)
    raw.connect(client_id="q2", clean_start=False)
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="q", qos=2)]))
    raw.receive()
    pub = PahoClient(broker.address, client_id="pub")
    pub.connect()
    pub.publish("q", b"exactly once", qos=2)
    publish = raw.receive()
    assert isinstance(publish, Publish) and publish.packet_id is not None
    raw.send(Pubrec(packet_id=publish.packet_id))
    assert raw.receive() == Pubrel(packet_id=publish.packet_id)
    raw.close()
    again = RawClient(broker.address)
    again.connect(client_id="q2", clean_start=False)
    assert again.receive() == Pubrel(packet_id=publish.packet_id)
    again.send(Pubcomp(packet_id=publish.packet_id))
    again.ping()
    assert not broker.core.sessions["q2"].inflight


def test_mqtt_4_3_3_2_inbound_qos2_resend_is_not_routed_twice(broker: Broker) -> None:
    sub = PahoClient(broker.address, client_id="sub")
    sub.connect()
    sub.subscribe("once", qos=2)
    raw = RawClient(broker.address)
    raw.connect(client_id="pub2")
    publish = Publish(topic="once", payload=b"x", qos=2, packet_id=9)
    raw.send(publish)
    assert raw.receive() == Pubrec(packet_id=9)
    raw.send(Publish(topic="once", payload=b"x", qos=2, packet_id=9, dup=True))
    assert raw.receive() == Pubrec(packet_id=9)
    raw.send(Pubrel(packet_id=9))
    assert raw.receive() == Pubcomp(packet_id=9)
    assert sub.message().payload == b"x"
    sub.no_message()


def _delivered(broker: Broker, version: int, qos: int) -> tuple[RawClient, Publish]:
    """A raw subscriber holding an unacknowledged QoS ``qos`` PUBLISH from the broker."""
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id=f"acker-{qos}")
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="acks", qos=qos)]))
    assert isinstance(raw.receive(), Suback)
    pub = PahoClient(broker.address, client_id=f"ack-pub-{qos}")
    pub.connect()
    pub.publish("acks", b"x", qos=qos)
    publish = raw.receive()
    assert isinstance(publish, Publish) and publish.qos == qos and publish.packet_id
    return raw, publish


def _closed_for_protocol_error(raw: RawClient, version: int) -> None:
    expected = [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)] if version == 5 else []
    assert raw.expect_closed() == expected


@pytest.mark.parametrize("ack", [Pubrec, Pubcomp], ids=["pubrec", "pubcomp"])
def test_mqtt_4_8_0_1_qos2_ack_for_a_qos1_message_closes(
        broker: Broker, version: int, ack: type[Pubrec | Pubcomp]) -> None:
    raw, publish = _delivered(broker, version, qos=1)
    assert publish.packet_id is not None
    raw.send(ack(packet_id=publish.packet_id))
    _closed_for_protocol_error(raw, version)


def test_mqtt_4_8_0_1_puback_for_a_qos2_message_closes(broker: Broker, version: int) -> None:
    raw, publish = _delivered(broker, version, qos=2)
    assert publish.packet_id is not None
    raw.send(Puback(packet_id=publish.packet_id))
    _closed_for_protocol_error(raw, version)


def test_mqtt_4_3_3_pubcomp_before_pubrec_closes(broker: Broker, version: int) -> None:
    raw, publish = _delivered(broker, version, qos=2)
    assert publish.packet_id is not None
    raw.send(Pubcomp(packet_id=publish.packet_id))
    _closed_for_protocol_error(raw, version)


def test_puback_after_pubrec_closes(broker: Broker, version: int) -> None:
    raw, publish = _delivered(broker, version, qos=2)
    assert publish.packet_id is not None
    raw.send(Pubrec(packet_id=publish.packet_id))
    assert raw.receive() == Pubrel(packet_id=publish.packet_id)
    raw.send(Pubrec(packet_id=publish.packet_id))  # repeated: PUBREL again
    assert raw.receive() == Pubrel(packet_id=publish.packet_id)
    raw.send(Puback(packet_id=publish.packet_id))
    _closed_for_protocol_error(raw, version)


def test_acks_for_ids_not_in_flight_are_harmless(broker: Broker, version: int) -> None:
    raw, publish = _delivered(broker, version, qos=1)
    raw.send(Puback(packet_id=4242))
    raw.send(Pubcomp(packet_id=4243))
    raw.send(Pubrec(packet_id=4244))
    code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if version == 5 else 0
    assert raw.receive() == Pubrel(packet_id=4244, reason_code=code)
    assert publish.packet_id is not None
    raw.send(Puback(packet_id=publish.packet_id))
    raw.ping()
    assert not broker.core.sessions["acker-1"].inflight


def test_refusing_pubrec_ends_the_qos2_flow(broker: Broker) -> None:
    raw, publish = _delivered(broker, 5, qos=2)
    assert publish.packet_id is not None
    raw.send(Pubrec(packet_id=publish.packet_id, reason_code=ReasonCode.QUOTA_EXCEEDED))
    raw.ping()
    assert not broker.core.sessions["acker-2"].inflight


def test_unknown_pubrel_answered_with_pubcomp(broker: Broker, version: int) -> None:
    """Robustness B5 15: PUBCOMP (v5 reason 0x92), and the connection goes on."""
    raw = RawClient(broker.address, version=version)
    raw.connect()
    raw.send(Pubrel(packet_id=77))
    code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if version == 5 else 0
    assert raw.receive() == Pubcomp(packet_id=77, reason_code=code)
    raw.ping()


def test_offline_messages_queued_for_a_persistent_session(broker: Broker, version: int) -> None:
    sub = PahoClient(broker.address, client_id="offline", version=version, clean=False)
    sub.connect(session_expiry=300)
    sub.subscribe("q/#", qos=1)
    sub.disconnect()
    pub = PahoClient(broker.address, client_id="pub", version=version)
    pub.connect()
    for i in range(30):
        pub.publish(f"q/{i}", str(i).encode(), qos=1)
    pub.publish("q/zero", b"qos0", qos=0)  # not queued for offline sessions by default
    pub.publish("elsewhere", b"", qos=1)  # acked after the QoS 0 one was handled: in order
    back = PahoClient(broker.address, client_id="offline", version=version, clean=False)
    session_present, _, _ = back.connect(session_expiry=300)
    assert session_present
    assert [int(back.message().payload) for _ in range(30)] == list(range(30))
    back.no_message()


def test_mqtt_3_3_2_6_message_expiry_forwarded_and_enforced(broker: Broker) -> None:
    sub = PahoClient(broker.address, client_id="exp", version=5, clean=False)
    sub.connect(session_expiry=300)
    sub.subscribe("e", qos=1)
    sub.disconnect()
    pub = PahoClient(broker.address, client_id="pub", version=5)
    pub.connect()
    pub.publish("e", b"short", qos=1, properties=props(PacketTypes.PUBLISH,
                                                        MessageExpiryInterval=1))
    pub.publish("e", b"long", qos=1, properties=props(PacketTypes.PUBLISH,
                                                       MessageExpiryInterval=60))
    threading.Event().wait(1.2)  # the subject under test is time passing, not a race
    back = PahoClient(broker.address, client_id="exp", version=5, clean=False)
    back.connect(session_expiry=300)
    message = back.message()
    assert message.payload == b"long"  # [MQTT-3.3.2-5]: the expired one is gone
    assert 55 <= message.properties.MessageExpiryInterval < 60
    back.no_message()


def test_topic_alias_from_client(broker: Broker) -> None:
    sub = PahoClient(broker.address, client_id="sub", version=5)
    sub.connect()
    sub.subscribe("alias/#")
    raw = RawClient(broker.address, version=5)
    raw.connect()
    raw.send(Publish(topic="alias/long/topic", payload=b"1",
                     properties=Properties(topic_alias=1)))
    raw.send(Publish(topic="", payload=b"2", properties=Properties(topic_alias=1)))
    assert [(m.topic, m.payload) for m in (sub.message(), sub.message())] == [
        ("alias/long/topic", b"1"), ("alias/long/topic", b"2")]
    raw.send(Publish(topic="", payload=b"3", properties=Properties(topic_alias=2)))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)]


def test_topic_aliases_belong_to_their_connection(broker: Broker) -> None:
    """An alias one client set means nothing on another connection, whichever asked for
    nothing at CONNECT (those share one default state, which must stay untouched)."""
    setter = RawClient(broker.address, version=5)
    setter.connect(client_id="setter")
    setter.send(Publish(topic="alias/one", payload=b"1", properties=Properties(topic_alias=1)))
    setter.ping()  # handled in order: the alias is set by now
    other = RawClient(broker.address, version=5)
    other.connect(client_id="other")
    other.send(Publish(topic="", payload=b"2", properties=Properties(topic_alias=1)))
    assert other.expect_closed() == [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)]


def test_mqtt_3_3_2_9_topic_alias_over_maximum(make_broker: BrokerFactory) -> None:
    broker = make_broker(topic_alias_maximum=2)
    raw = RawClient(broker.address, version=5)
    raw.connect()
    raw.send(Publish(topic="t", properties=Properties(topic_alias=3)))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.TOPIC_ALIAS_INVALID)]


def test_topic_alias_to_client(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.connect(properties=Properties(topic_alias_maximum=4))
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="to/#")]))
    raw.receive()
    pub = PahoClient(broker.address, client_id="pub", version=5)
    pub.connect()
    pub.publish("to/me", b"1", qos=1)
    pub.publish("to/me", b"2", qos=1)
    first, second = raw.receive(), raw.receive()
    assert isinstance(first, Publish) and isinstance(second, Publish)
    assert (first.topic, first.properties.topic_alias) == ("to/me", 1)
    assert (second.topic, second.properties.topic_alias, second.payload) == ("", 1, b"2")


def test_mqtt_4_9_0_1_receive_maximum_bounds_messages_in_flight(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="slow", properties=Properties(receive_maximum=2))
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="w", qos=1)]))
    raw.receive()
    pub = PahoClient(broker.address, client_id="pub", version=5)
    pub.connect()
    for i in range(5):
        pub.publish("w", str(i).encode(), qos=1)
    first, second = raw.receive(), raw.receive()
    raw.ping()  # a PINGRESP, not a third PUBLISH, comes next: the window is full
    assert isinstance(first, Publish) and isinstance(second, Publish)
    raw.send(Puback(packet_id=first.packet_id))  # type: ignore[arg-type]
    third = raw.receive()
    assert isinstance(third, Publish) and third.payload == b"2"


def test_mqtt_3_1_2_25_too_large_for_the_client_is_dropped(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.connect(properties=Properties(maximum_packet_size=64))
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="m", qos=1)]))
    raw.receive()
    pub = PahoClient(broker.address, client_id="pub", version=5)
    pub.connect()
    pub.publish("m", b"x" * 100, qos=1)
    pub.publish("m", b"small", qos=1)
    message = raw.receive()
    assert isinstance(message, Publish) and message.payload == b"small"


def test_mqtt_3_2_2_15_packet_over_the_broker_maximum(make_broker: BrokerFactory) -> None:
    """Robustness B5 4: v5 DISCONNECT 0x95; v3.1.1 a plain close."""
    broker = make_broker(max_packet_size=1024)
    for version in (4, 5):
        raw = RawClient(broker.address, version=version)
        raw.connect()
        raw.send(Publish(topic="big", payload=b"x" * 4096))
        expected = [Disconnect(reason_code=ReasonCode.PACKET_TOO_LARGE)] if version == 5 else []
        assert raw.expect_closed() == expected


def test_shared_subscription_one_member_per_message(broker: Broker, version: int) -> None:
    members = []
    for name in ("m1", "m2"):
        member = PahoClient(broker.address, client_id=name, version=version)
        member.connect()
        member.subscribe("$share/workers/jobs/#", qos=1)
        members.append(member)
    pub = PahoClient(broker.address, client_id="pub", version=version)
    pub.connect()
    for i in range(10):
        pub.publish(f"jobs/{i}", str(i).encode(), qos=1)
    got = []
    for member in members:
        while True:
            try:
                got.append(int(member.message(timeout=0.5).payload))
            except AssertionError:
                break
        assert got, "both members should get some"
    assert sorted(got) == list(range(10))


def test_connack_then_raw_v5_suback_invalid_filter(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    assert isinstance(raw.connect(), Connack)
    raw.send(Subscribe(packet_id=3, subscriptions=[
        Subscription(topic_filter="ok/#", qos=1), Subscription(topic_filter="bad/#/x"),
        Subscription(topic_filter="$share/g/ok")]))
    assert raw.receive() == Suback(packet_id=3, reason_codes=[1, 0x8F, 0])
