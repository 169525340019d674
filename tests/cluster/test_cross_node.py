"""Several nodes behave as one broker: delivery, routes, shared subscriptions, wills,
retained messages and take-over across nodes (three nodes on one real redis-server)."""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time
import uuid

import paho.mqtt.client as paho
import pytest

from ..broker.helpers import PahoClient, props, wait_until
from ..broker_process import BrokerProcess

PacketTypes = pytest.importorskip("paho.mqtt.packettypes").PacketTypes


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _client(node: BrokerProcess, client_id: str = "", version: int = 5,
            **kwargs: object) -> PahoClient:
    # No automatic reconnect: a client taken over must stay away, not take the id back.
    client = PahoClient(node.address, client_id=client_id or _name("c"), version=version,
                        reconnect_on_failure=False, **kwargs)  # type: ignore[arg-type]
    client.connect()
    return client


def _wait_for_route(publisher: PahoClient, topic: str, present: bool = True) -> float:
    """Publish QoS 1 probes until the PUBACK says the route is known there (MQTT 5: 0x10 No
    matching subscribers while it is not); the seconds it took."""
    started = time.monotonic()
    while True:
        code = publisher.publish(topic, b"probe", qos=1)
        if (code == 0) == present:
            return time.monotonic() - started
        assert time.monotonic() - started < 5, f"route for {topic} never {present}"
        time.sleep(0.01)  # a probe loop: the route arrives over Redis, nothing to wait on


def _message(client: PahoClient, timeout: float = 5.0) -> paho.MQTTMessage:
    """The next message that is not a route probe."""
    while True:
        message = client.message(timeout)
        if message.payload != b"probe":
            return message


def _no_message(client: PahoClient, within: float = 0.3) -> None:
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = client.messages.get(timeout=left)
        except queue.Empty:
            return
        assert message.payload == b"probe", f"unexpected {message.topic}: {message.payload!r}"


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_a_message_published_on_one_node_reaches_a_subscriber_on_another(
        nodes: list[BrokerProcess], qos: int) -> None:
    base = _name("a")
    subscriber = _client(nodes[0])
    assert subscriber.subscribe(f"{base}/+/c", qos=qos)[0] == qos
    publisher = _client(nodes[1])
    _wait_for_route(publisher, f"{base}/probe/c")
    publisher.publish(f"{base}/b/c", b"hello", qos=qos)
    message = _message(subscriber)
    assert (message.topic, message.payload, message.qos) == (f"{base}/b/c", b"hello", qos)
    subscriber.disconnect()
    publisher.disconnect()


@pytest.mark.parametrize("qos", [1, 2])
def test_a_thousand_messages_arrive_in_order_and_qos_2_once(
        nodes: list[BrokerProcess], qos: int) -> None:
    topic = _name("order")
    subscriber = _client(nodes[0])
    subscriber.subscribe(topic, qos=qos)
    publisher = _client(nodes[2])
    _wait_for_route(publisher, topic)
    count = 1000
    for index in range(count):
        publisher.client.publish(topic, str(index).encode(), qos)
    received = [_message(subscriber, 20).payload for _ in range(count)]
    assert received == [str(index).encode() for index in range(count)]
    _no_message(subscriber)  # nothing twice
    subscriber.disconnect()
    publisher.disconnect()


def test_routes_propagate_after_suback_and_after_unsuback(nodes: list[BrokerProcess]) -> None:
    topic = _name("route")
    publisher = _client(nodes[1])
    assert publisher.publish(topic, b"x", qos=1) == 0x10  # nobody subscribes yet
    subscriber = _client(nodes[0])
    subscriber.subscribe(topic, qos=1)
    assert _wait_for_route(publisher, topic) < 1.0
    subscriber.client.unsubscribe(topic)
    subscriber.wait("unsubscribe")
    assert _wait_for_route(publisher, topic, present=False) < 1.0
    subscriber.disconnect()
    publisher.disconnect()


def test_a_shared_subscription_gives_each_message_to_one_member_cluster_wide(
        nodes: list[BrokerProcess]) -> None:
    topic = _name("shared")
    members = [_client(nodes[0]), _client(nodes[1])]
    for member in members:
        member.subscribe(f"$share/g/{topic}", qos=1)
    publisher = _client(nodes[2])
    _wait_for_route(publisher, topic)  # the first member's route (probes are skipped below)
    seen: list[set[bytes]] = [set(), set()]
    count = 1000
    for index in range(count):
        assert publisher.publish(topic, str(index).encode(), qos=1) == 0
    payloads: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(payloads) < count and time.monotonic() < deadline:
        for which, member in enumerate(members):
            while not member.messages.empty():
                payload = member.messages.get().payload
                if payload != b"probe":
                    seen[which].add(payload)
                    payloads.append(payload)
        time.sleep(0.01)  # two queues drained in turn
    assert sorted(payloads) == sorted(str(index).encode() for index in range(count))
    assert seen[0] and seen[1], "both members get messages"
    for member in members:
        member.disconnect()
    publisher.disconnect()


def test_a_will_is_delivered_once_on_another_node(nodes: list[BrokerProcess]) -> None:
    topic = _name("will")
    subscriber = _client(nodes[1])
    subscriber.subscribe(topic, qos=1)
    probe = _client(nodes[0])
    _wait_for_route(probe, topic)
    doomed = PahoClient(nodes[0].address, client_id=_name("doomed"), version=5,
                        reconnect_on_failure=False)
    doomed.client.will_set(topic, b"gone", qos=1)
    doomed.connect()
    sock = doomed.client.socket()
    assert sock is not None
    doomed.client.loop_stop()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, not a DISCONNECT
    message = _message(subscriber)
    assert (message.topic, message.payload) == (topic, b"gone")
    _no_message(subscriber)
    subscriber.disconnect()
    probe.disconnect()


def test_a_retained_message_set_on_one_node_is_seen_and_cleared_everywhere(
        nodes: list[BrokerProcess]) -> None:
    base = _name("ret")
    publisher = _client(nodes[0])
    assert publisher.publish(f"{base}/1", b"kept", qos=1, retain=True) in (0, 0x10)
    late = _client(nodes[2])
    late.subscribe(f"{base}/#", qos=1)
    message = late.message()
    assert (message.topic, message.payload, message.retain) == (f"{base}/1", b"kept", True)
    late.disconnect()
    publisher.publish(f"{base}/1", b"", qos=1, retain=True)  # clears it
    publisher.publish(f"{base}/marker", b"m", qos=1, retain=True)
    for node in nodes:
        viewer = _client(node)
        viewer.subscribe(f"{base}/#", qos=1)
        message = viewer.message()
        # Retained changes apply in Redis's order, so the marker comes after the clearing.
        assert message.topic == f"{base}/marker", message.topic
        viewer.no_message(within=0.2)
        viewer.disconnect()
    publisher.disconnect()


def test_a_client_id_connecting_to_another_node_takes_the_session_over(
        nodes: list[BrokerProcess]) -> None:
    client_id = _name("taken")
    first = _client(nodes[0], client_id)
    second = _client(nodes[2], client_id)
    assert first.wait("disconnect") == 0x8E  # Session taken over
    topic = _name("after")
    second.subscribe(topic, qos=1)
    assert second.publish(topic, b"still here", qos=1) == 0
    assert second.message().payload == b"still here"
    second.disconnect()
    first.client.loop_stop()


def test_two_simultaneous_connects_with_one_id_leave_one_connection(
        nodes: list[BrokerProcess]) -> None:
    client_id = _name("race")
    clients = [PahoClient(node.address, client_id=client_id, version=5,
                          reconnect_on_failure=False) for node in (nodes[1], nodes[2])]
    barrier = threading.Barrier(2)

    def connect(client: PahoClient) -> None:
        barrier.wait()
        client.connect()

    threads = [threading.Thread(target=connect, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # Exactly one is told it was taken over (paho's is_connected() does not notice a
    # server's DISCONNECT, so its events are read); the other stays connected.
    def told(client: PahoClient) -> bool:
        return any(event == ("disconnect", 0x8E) for event in list(client.events.queue))

    wait_until(lambda: any(told(c) for c in clients), what="one connection taken over")
    survivors = [c for c in clients if not told(c)]
    assert len(survivors) == 1
    survivor = survivors[0]
    topic = _name("alive")
    survivor.subscribe(topic, qos=1)
    assert survivor.publish(topic, b"ok", qos=1) == 0
    assert survivor.message().payload == b"ok"
    assert [told(c) for c in clients].count(True) == 1
    survivor.disconnect()
    for client in clients:
        client.client.loop_stop()


def test_mqtt_3_1_1_clients_work_across_nodes(nodes: list[BrokerProcess]) -> None:
    topic = _name("v311")
    subscriber = _client(nodes[2], version=4)
    subscriber.subscribe(topic, qos=1)
    publisher = _client(nodes[0], version=5)
    _wait_for_route(publisher, topic)
    v311 = _client(nodes[0], version=4)
    v311.publish(topic, b"from 3.1.1", qos=1)
    assert _message(subscriber).payload == b"from 3.1.1"
    for client in (subscriber, publisher, v311):
        client.disconnect()


__all__ = ["props"]
