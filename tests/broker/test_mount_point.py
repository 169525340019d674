"""A listener's mount point (mosquitto's mount_point): its clients publish and subscribe within
it, see topics without it, and stay apart from other listeners' clients."""

from __future__ import annotations

from mqlite.broker.config.listener_config import ListenerConfig
from mqlite.protocol import Publish, Unsuback, Unsubscribe

from ..conftest import BrokerFactory
from .helpers import RawClient


def test_mounted_clients_live_under_their_prefix(make_broker: BrokerFactory) -> None:
    broker = make_broker(listeners=[ListenerConfig(port=0, name="plain"),
                                    ListenerConfig(port=0, name="tenant", mount_point="a/")])
    plain = RawClient(broker.addresses["plain"])
    plain.connect(client_id="plain")
    plain.subscribe("a/#", qos=1)
    tenant = RawClient(broker.addresses["tenant"])
    tenant.connect(client_id="tenant")
    tenant.subscribe("#", qos=1)  # that is a/# to the broker
    plain.send(Publish(topic="elsewhere", payload=b"not for the tenant"))
    plain.send(Publish(topic="a/in", payload=b"for the tenant", retain=True))
    got = tenant.receive()
    assert isinstance(got, Publish) and (got.topic, got.payload) == ("in", b"for the tenant")
    seen = plain.receive()  # its own message, through its a/# subscription
    assert isinstance(seen, Publish) and seen.topic == "a/in"
    tenant.send(Publish(topic="out", payload=b"from the tenant"))
    mine = tenant.receive()
    assert isinstance(mine, Publish) and mine.topic == "out"
    theirs = plain.receive()
    assert isinstance(theirs, Publish) and theirs.topic == "a/out"
    # Retained messages come without the mount point too; unsubscribing takes it off.
    late = RawClient(broker.addresses["tenant"])
    late.connect(client_id="late")
    late.subscribe("in", qos=0)
    retained = late.receive()
    assert isinstance(retained, Publish) and retained.topic == "in" and retained.retain
    late.send(Unsubscribe(packet_id=2, topic_filters=["in"]))
    unsuback = late.receive()
    assert isinstance(unsuback, Unsuback)
    assert not broker.core.sessions["late"].subscriptions
