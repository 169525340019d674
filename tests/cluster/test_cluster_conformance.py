"""The Cluster interface's conformance suite (engine/services.py): what a client sees of one
broker is the same whether the broker is alone (SingleNode, the default) or a node of a
cluster on a real redis-server (ClusterNode), as the store conformance suite does for the
stores. Each behaviour runs against both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlite.broker import Broker
from mqlite.broker.cluster.config import ClusterConfig
from mqlite.broker.engine.single_node import SingleNode
from mqlite.protocol import Disconnect, Properties, Publish, Will

from ..broker.helpers import PahoClient, RawClient, wait_until
from ..redis_server import RedisServer


@pytest.fixture(params=["single-node", "redis-cluster"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    redis = None
    if request.param == "single-node":
        made = Broker(port=0, sys_interval=0)
    else:
        redis = RedisServer(tmp_path / "redis")
        made = Broker(port=0, sys_interval=0,
                      cluster=ClusterConfig(url=redis.url, node_id="conformance",
                                            node_ttl=1.5))
    made.start()
    try:
        cluster = made.core.cluster
        assert isinstance(cluster, SingleNode) == (redis is None) == (not made.core.clustered)
        wait_until(lambda: cluster.available, what="the node joined")
        yield made
    finally:
        made.stop()
        if redis is not None:
            redis.kill()


def test_a_qos_1_message_reaches_its_subscriber(broker: Broker) -> None:
    subscriber = PahoClient(broker.address, client_id="conf-sub", version=5)
    subscriber.connect()
    subscriber.subscribe("conf/+", qos=1)
    publisher = PahoClient(broker.address, client_id="conf-pub", version=5)
    publisher.connect()
    assert publisher.publish("conf/a", b"one", qos=1) == 0  # acknowledged: someone got it
    message = subscriber.message()
    assert (message.topic, message.payload, message.qos) == ("conf/a", b"one", 1)
    assert publisher.publish("elsewhere", b"none", qos=1) == 0x10  # no matching subscribers


def test_a_second_connect_with_one_id_takes_the_session_over(broker: Broker) -> None:
    first = RawClient(broker.address, version=5)
    first.connect("conf-twice", protocol_version=5)
    second = RawClient(broker.address, version=5)
    assert second.connect("conf-twice", protocol_version=5).reason_code == 0
    closing = first.expect_closed()
    assert any(isinstance(p, Disconnect) and p.reason_code == 0x8E for p in closing)


def test_a_persistent_session_keeps_what_came_while_away(broker: Broker) -> None:
    expiry = Properties(session_expiry_interval=600)
    away = RawClient(broker.address, version=5)
    away.connect("conf-away", clean_start=False, properties=expiry, protocol_version=5)
    away.subscribe("conf/kept", 1)
    away.send(Disconnect())
    away.close()
    publisher = PahoClient(broker.address, client_id="conf-pub2", version=5)
    publisher.connect()
    assert publisher.publish("conf/kept", b"while away", qos=1) == 0
    back = RawClient(broker.address, version=5)
    assert back.connect("conf-away", clean_start=False, properties=expiry,
                        protocol_version=5).session_present
    message = back.receive()
    assert isinstance(message, Publish) and message.payload == b"while away"


def test_retained_messages_are_set_given_and_cleared(broker: Broker) -> None:
    publisher = PahoClient(broker.address, client_id="conf-retainer", version=5)
    publisher.connect()
    publisher.publish("conf/retained", b"state", qos=1, retain=True)
    late = RawClient(broker.address, version=5)
    late.connect("conf-late", protocol_version=5)
    late.subscribe("conf/retained", 1)
    message = late.receive()
    assert isinstance(message, Publish) and message.retain and message.payload == b"state"
    publisher.publish("conf/retained", b"", qos=1, retain=True)
    wait_until(lambda: not broker.core.retained.matching("conf/retained", 0.0),
               what="the retained message cleared")


def test_a_will_is_published_when_its_client_vanishes(broker: Broker) -> None:
    watcher = PahoClient(broker.address, client_id="conf-watcher", version=5)
    watcher.connect()
    watcher.subscribe("conf/will", qos=1)
    doomed = RawClient(broker.address, version=5)
    doomed.connect("conf-doomed", protocol_version=5,
                   will=Will(topic="conf/will", payload=b"gone", qos=1))
    doomed.close()  # no DISCONNECT
    assert watcher.message().payload == b"gone"


def test_a_shared_subscription_gives_each_message_to_one_member(broker: Broker) -> None:
    members = [PahoClient(broker.address, client_id=f"conf-member-{n}", version=5)
               for n in range(2)]
    for member in members:
        member.connect()
        member.subscribe("$share/conf/work", qos=1)
    publisher = PahoClient(broker.address, client_id="conf-boss", version=5)
    publisher.connect()
    for n in range(4):
        assert publisher.publish("work", str(n).encode(), qos=1) == 0
    got = [member.message().payload for member in members for _ in range(2)]
    assert sorted(got) == [b"0", b"1", b"2", b"3"]
