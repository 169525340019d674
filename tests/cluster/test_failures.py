"""Cluster mode when things fail: Redis stopped and restarted (AOF) while nodes run, and a
node killed while messages for its sessions are on their way."""

from __future__ import annotations

import pytest

from mqlite.protocol import Connack, Puback, Publish

from ..broker.helpers import PahoClient, RawClient
from ..broker_process import BrokerProcess
from .conftest import RedisServer, start_node
from .test_cross_node import _client, _message, _name, _wait_for_route

pytestmark = pytest.mark.slow


def test_redis_restarted_with_aof_refuses_while_down_and_recovers(redis: RedisServer) -> None:
    with start_node(redis, "n1") as n1, start_node(redis, "n2") as n2:
        topic, local = _name("remote"), _name("local")
        publisher = _client(n1)
        assert publisher.publish(f"{topic}/kept", b"retained", qos=1, retain=True) in (0, 0x10)
        remote_subscriber = _client(n2)
        remote_subscriber.subscribe(topic, qos=1)
        _wait_for_route(publisher, topic)
        local_subscriber = _client(n1)
        local_subscriber.subscribe(local, qos=0)
        v311 = RawClient(n1.address, version=4)
        v311.connect("v311-publisher")

        redis.stop()
        n1.wait_for_log("lost Redis")
        # Fail closed: new connections are refused as the server being unavailable...
        refused = RawClient(n1.address, version=5).connect(_name("new"), protocol_version=5)
        assert refused.reason_code == 0x88
        assert RawClient(n1.address, version=4).connect(_name("new")).reason_code == 3
        # ...a QoS 1 message another node must get is refused (MQTT 5) or disconnects (3.1.1)...
        assert publisher.publish(topic, b"lost", qos=1) == 0x80
        v311.send(Publish(topic=topic, payload=b"lost", qos=1, packet_id=1))
        assert not [p for p in v311.expect_closed() if isinstance(p, Puback)]
        # ...and QoS 0 within the node goes on.
        publisher.publish(local, b"still local", qos=0)
        assert _message(local_subscriber).payload == b"still local"

        redis.start()
        for node in (n1, n2):
            node.wait_for_log("rejoined", timeout=15)
        _wait_for_route(publisher, topic)
        assert publisher.publish(topic, b"after", qos=1) == 0
        assert _message(remote_subscriber).payload == b"after"
        late = _client(n2)
        late.subscribe(f"{topic}/#", qos=1)
        kept = _message(late)
        assert (kept.payload, kept.retain) == (b"retained", True)  # the AOF kept it
        for client in (publisher, remote_subscriber, local_subscriber, late):
            client.disconnect()


def test_messages_forwarded_to_a_killed_node_wait_in_its_stream(
        redis: RedisServer, tmp_path: object) -> None:
    db = f"{tmp_path}/n1.db"
    n1 = start_node(redis, "n1", "--db", db)
    with start_node(redis, "n2") as n2:
        topic = _name("stream")
        subscriber = PahoClient(n1.address, client_id=_name("persistent"), version=4,
                                clean=False)
        subscriber.connect()
        subscriber.subscribe(topic, qos=1)
        subscriber.disconnect()  # its session (and route) stays on n1
        publisher = _client(n2)
        _wait_for_route(publisher, topic)
        n1.proc.kill()
        n1.proc.wait()
        count = 200
        for index in range(count):  # acknowledged once the forward is in n1's stream
            assert publisher.publish(topic, str(index).encode(), qos=1) == 0
        with start_node(redis, "n1", "--db", db) as restarted:
            again = PahoClient(restarted.address, client_id=subscriber.client._client_id
                               .decode(), version=4, clean=False)
            again.connect()
            got = [_message(again).payload for _ in range(count)]
            assert got == [str(index).encode() for index in range(count)]
            again.disconnect()
        publisher.disconnect()


def test_a_node_that_cannot_reach_redis_refuses_connects_until_it_can(
        redis: RedisServer) -> None:
    redis.stop()
    node = BrokerProcess("--cluster", redis.url, "--node-id", "lonely", "--node-ttl", "1.5")
    with node:
        node.wait_for_log("lost Redis")
        assert RawClient(node.address, version=5).connect(
            "early", protocol_version=5).reason_code == 0x88
        redis.start()
        node.wait_for_log("node lonely joined", timeout=15)
        connack = RawClient(node.address, version=5).connect("later", protocol_version=5)
        assert isinstance(connack, Connack) and connack.reason_code == 0


def test_a_node_restarted_after_kill_9_takes_its_id_back_even_if_redis_comes_late(
        redis: RedisServer) -> None:
    """Its killed predecessor's membership key has not expired yet (a long TTL here): the
    first registration of a process takes the id over, it does not read as a rival."""
    first = start_node(redis, "again", "--node-ttl", "30")
    first.proc.kill()
    first.proc.wait()
    redis.stop()
    with BrokerProcess("--cluster", redis.url, "--node-id", "again",
                       "--node-ttl", "30") as second:
        second.wait_for_log("lost Redis")
        redis.start()
        second.wait_for_log("node again joined", timeout=15)
        assert RawClient(second.address, version=5).connect(
            "after", protocol_version=5).reason_code == 0
        assert not any("registered by another process" in line for line in second.log)
