"""Cross-check against a real peer: paho-mqtt writes packets to a loopback TCP socket and we
decode them; we encode the server's answers and paho's callbacks show it understood them."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqlite.protocol import (
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    encode,
)

TIMEOUT = 5.0


class Peer:
    """The server end of one paho connection: our reader, our encoder, paho's loop."""

    def __init__(self, conn: socket.socket, client: paho.Client, version: int) -> None:
        self.conn = conn
        self.client = client
        self.version = version
        self.reader = PacketReader("server")
        self.events: list[tuple[str, Any]] = []
        conn.settimeout(TIMEOUT)

    def receive(self) -> Packet:
        """The next packet paho wrote (later ones stay buffered in the reader)."""
        while True:
            for packet in self.reader.feed(b""):
                return packet
            data = self.conn.recv(65536)
            if not data:
                raise ConnectionError("paho closed the connection")
            self.reader.feed(data)  # buffered at once; taken on the next turn

    def send(self, packet: Packet) -> None:
        self.conn.sendall(encode(packet, self.version))

    def pump_until(self, done: Callable[[], bool]) -> None:
        """Run paho's own loop until ``done()``, failing after TIMEOUT seconds."""
        deadline = time.monotonic() + TIMEOUT
        while not done():
            assert time.monotonic() < deadline, f"paho did not get there: {self.events}"
            self.client.loop(timeout=0.1)


@pytest.fixture(params=[paho.MQTTv311, paho.MQTTv5], ids=["3.1.1", "5.0"])
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    version = request.param
    server = socket.create_server(("127.0.0.1", 0))
    kwargs: dict[str, Any] = {"protocol": version, "client_id": "paho-peer"}
    if version == paho.MQTTv311:
        kwargs["clean_session"] = False
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, **kwargs)
    client.username_pw_set("alice", "s3cret")
    if version == paho.MQTTv5:
        will_props = PahoProperties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = 10
        will_props.ContentType = "text/plain"
        will_props.UserProperty = ("origin", "test")
        client.will_set("clients/paho/status", b"gone", qos=1, retain=True,
                        properties=will_props)
        connect_props = PahoProperties(PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = 300
        connect_props.ReceiveMaximum = 50
        client.connect("127.0.0.1", server.getsockname()[1], keepalive=45, clean_start=True,
                       properties=connect_props)
    else:
        client.will_set("clients/paho/status", b"gone", qos=1, retain=True)
        client.connect("127.0.0.1", server.getsockname()[1], keepalive=45)
    conn, _ = server.accept()
    result = Peer(conn, client, version)
    client.on_connect = lambda c, u, flags, rc, props: result.events.append(
        ("connect", (flags.session_present, rc, props)))
    client.on_subscribe = lambda c, u, mid, rcs, props: result.events.append(
        ("subscribe", (mid, rcs)))
    client.on_unsubscribe = lambda c, u, mid, rcs, props: result.events.append(
        ("unsubscribe", (mid, rcs)))
    client.on_publish = lambda c, u, mid, rc, props: result.events.append(("publish", mid))
    client.on_message = lambda c, u, msg: result.events.append(("message", msg))
    try:
        yield result
    finally:
        client.socket() and client.socket().close()  # type: ignore[union-attr]
        conn.close()
        server.close()


def _event(peer: Peer, name: str) -> Any:
    peer.pump_until(lambda: any(n == name for n, _ in peer.events))
    value = next(v for n, v in peer.events if n == name)
    peer.events = [(n, v) for n, v in peer.events if n != name]
    return value


def _connect(peer: Peer) -> Connect:
    connect = peer.receive()
    assert isinstance(connect, Connect)
    peer.send(Connack(session_present=False, properties=(
        Properties(assigned_client_identifier="given", receive_maximum=10)
        if peer.version == 5 else Properties())))
    session_present, rc, props = _event(peer, "connect")
    assert session_present is False and rc == 0
    if peer.version == 5:
        assert props.AssignedClientIdentifier == "given"
        assert props.ReceiveMaximum == 10
    return connect


def test_connect_with_will_and_credentials(peer: Peer) -> None:
    connect = _connect(peer)
    v5 = peer.version == 5
    assert connect == Connect(
        client_id="paho-peer", protocol_version=peer.version, clean_start=v5, keep_alive=45,
        username="alice", password=b"s3cret",
        will=Will(topic="clients/paho/status", payload=b"gone", qos=1, retain=True,
                  properties=Properties(will_delay_interval=10, content_type="text/plain",
                                        user_property=(("origin", "test"),))
                  if v5 else Properties()),
        properties=Properties(session_expiry_interval=300, receive_maximum=50)
        if v5 else Properties(),
    )


def test_publish_with_properties_both_ways(peer: Peer) -> None:
    _connect(peer)
    props = None
    expected_props = Properties()
    if peer.version == 5:
        props = PahoProperties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        props.MessageExpiryInterval = 120
        props.ResponseTopic = "replies/1"
        props.CorrelationData = b"\x00\x01"
        props.PayloadFormatIndicator = 1
        props.UserProperty = [("a", "1"), ("b", "2")]
        expected_props = Properties(
            content_type="application/json", message_expiry_interval=120,
            response_topic="replies/1", correlation_data=b"\x00\x01",
            payload_format_indicator=1, user_property=(("a", "1"), ("b", "2")))
    info = peer.client.publish("sensors/1/temp", b'{"t": 21.5}', qos=1, retain=True,
                               properties=props)
    publish = peer.receive()
    assert publish == Publish(topic="sensors/1/temp", payload=b'{"t": 21.5}', qos=1, retain=True,
                              packet_id=info.mid, properties=expected_props)
    peer.send(Puback(packet_id=info.mid))
    assert _event(peer, "publish") == info.mid

    # Server to client, with subscription identifiers in v5.
    outgoing = Publish(topic="cmd/ü", payload=b"\xff\x00", qos=0, properties=(
        Properties(subscription_identifier=(3, 70000), user_property=(("k", "v"),))
        if peer.version == 5 else Properties()))
    peer.send(outgoing)
    message = _event(peer, "message")
    assert (message.topic, message.payload, message.qos) == ("cmd/ü", b"\xff\x00", 0)
    if peer.version == 5:
        assert message.properties.SubscriptionIdentifier == [3, 70000]
        assert message.properties.UserProperty == [("k", "v")]


def test_subscribe_unsubscribe_disconnect(peer: Peer) -> None:
    _connect(peer)
    if peer.version == 5:
        sub_props = PahoProperties(PacketTypes.SUBSCRIBE)
        sub_props.SubscriptionIdentifier = 42
        _, mid = peer.client.subscribe([
            ("a/+/c", SubscribeOptions(qos=2, noLocal=True, retainAsPublished=True,
                                       retainHandling=1)),
            ("$share/g/x/#", SubscribeOptions(qos=0)),
        ], properties=sub_props)
        expected = Subscribe(packet_id=mid, properties=Properties(subscription_identifier=(42,)),
                             subscriptions=[
            Subscription(topic_filter="a/+/c", qos=2, no_local=True, retain_as_published=True,
                         retain_handling=1),
            Subscription(topic_filter="$share/g/x/#", qos=0)])
    else:
        _, mid = peer.client.subscribe([("a/+/c", 2), ("x/#", 0)])
        expected = Subscribe(packet_id=mid, subscriptions=[
            Subscription(topic_filter="a/+/c", qos=2), Subscription(topic_filter="x/#")])
    assert peer.receive() == expected
    peer.send(Suback(packet_id=mid, reason_codes=[2, 0x80]))
    sub_mid, codes = _event(peer, "subscribe")
    assert sub_mid == mid and [int(c.value) for c in codes] == [2, 0x80]

    _, mid = peer.client.unsubscribe(["a/+/c", "x/#"])
    assert peer.receive() == Unsubscribe(packet_id=mid, topic_filters=["a/+/c", "x/#"])
    peer.send(Unsuback(packet_id=mid, reason_codes=[0, 0x11] if peer.version == 5 else []))
    unsub_mid, codes = _event(peer, "unsubscribe")
    assert unsub_mid == mid
    if peer.version == 5:
        assert [int(c.value) for c in codes] == [0, 0x11]

    if peer.version == 5:
        props = PahoProperties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0
        peer.client.disconnect(reasoncode=paho.ReasonCode(PacketTypes.DISCONNECT, identifier=4),
                               properties=props)
        assert peer.receive() == Disconnect(
            reason_code=4, properties=Properties(session_expiry_interval=0))
    else:
        peer.client.disconnect()
        assert peer.receive() == Disconnect()
