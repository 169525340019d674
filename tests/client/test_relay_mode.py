"""The client's relay mode (what a bridge uses): PUBLISH flows handed over as packets, sent
with the ids the relay gives them; against a real mqlite broker."""

from __future__ import annotations

import queue
from typing import Any

from mqlite.client import MQTT_ERR_SUCCESS, CallbackAPIVersion, Client, MQTTErrorCode
from mqlite.protocol import Packet, Puback, Pubcomp, Publish, Pubrec, Pubrel

from ..broker.helpers import PahoClient
from ..conftest import BrokerFactory

TIMEOUT = 10.0


class Relay:
    def __init__(self, address: tuple[str, int], client_id: str) -> None:
        self.packets: queue.Queue[Packet] = queue.Queue()
        self.connected: queue.Queue[bool] = queue.Queue()
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.relay_set(self.packets.put)
        self.client.on_connect = lambda *_: self.connected.put(True)
        self.client.on_subscribe = lambda *_: self.connected.put(True)
        self.client.connect(*address)
        self.client.loop_start()
        assert self.connected.get(timeout=TIMEOUT)

    def next(self) -> Packet:
        return self.packets.get(timeout=TIMEOUT)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_qos_2_message_in_is_answered_by_the_relay_only(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    relay = Relay(broker.address, "relay-in")
    try:
        relay.client.subscribe("t", 2)
        assert relay.connected.get(timeout=TIMEOUT)
        publisher = PahoClient(broker.address, client_id="pub")
        publisher.connect()
        publisher.client.publish("t", b"once", qos=2)
        packet = relay.next()
        assert isinstance(packet, Publish) and (packet.payload, packet.qos) == (b"once", 2)
        assert packet.packet_id is not None
        # Not answered by the client: the broker still has the message awaiting PUBREC.
        session = broker.core.sessions["relay-in"]
        assert packet.packet_id in session.inflight
        assert relay.client.relay_send(Pubrec(packet_id=packet.packet_id)) == MQTT_ERR_SUCCESS
        release = relay.next()
        assert release == Pubrel(packet_id=packet.packet_id)
        relay.client.relay_send(Pubcomp(packet_id=packet.packet_id))
        # The marker goes out on the relay's own connection, so the broker reads it after the
        # PUBCOMP (another client's PUBLISH could be read first, in the same loop turn).
        relay.client.relay_send(Publish(topic="t", payload=b"marker", qos=1, packet_id=9))
        answers = [relay.next(), relay.next()]
        assert Puback(packet_id=9) in answers
        marker = next(p for p in answers if isinstance(p, Publish))
        assert marker.payload == b"marker"
        assert list(session.inflight) == [marker.packet_id]  # the first flow is over
    finally:
        relay.stop()


def test_a_qos_2_message_out_keeps_the_relays_packet_id(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    subscriber = PahoClient(broker.address, client_id="sub")
    subscriber.connect()
    subscriber.subscribe("t", 2)
    relay = Relay(broker.address, "relay-out")
    try:
        relay.client.relay_send(Publish(topic="t", payload=b"relayed", qos=2, packet_id=777))
        assert relay.next() == Pubrec(packet_id=777)
        relay.client.relay_send(Publish(topic="t", payload=b"relayed", qos=2, packet_id=777,
                                        dup=True))  # a resend before PUBREL: not a new one
        assert relay.next() == Pubrec(packet_id=777)
        relay.client.relay_send(Pubrel(packet_id=777))
        assert relay.next() == Pubcomp(packet_id=777)
        assert subscriber.message().payload == b"relayed"
        subscriber.no_message()
    finally:
        relay.stop()


def test_relay_send_without_a_connection_sends_nothing() -> None:
    client = Client(CallbackAPIVersion.VERSION2, client_id="offline")
    packets: list[Any] = []
    client.relay_set(packets.append)
    rc = client.relay_send(Publish(topic="t", payload=b"x", qos=1, packet_id=1))
    assert rc == MQTTErrorCode.MQTT_ERR_NO_CONN and packets == []
