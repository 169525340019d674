"""$SYS/broker/... topics: version, uptime, clients, message counters."""

from __future__ import annotations

from importlib.metadata import version

from mqlite.broker import Broker
from mqlite.protocol import Connack, ConnackReturnCode, Connect, ReasonCode, Will

from ..conftest import BrokerFactory
from .helpers import PahoClient, RawClient


def test_sys_topics_published_and_retained(make_broker: BrokerFactory) -> None:
    broker = make_broker(sys_interval=0.2)
    pub = PahoClient(broker.address, client_id="pub")
    pub.connect()
    for _ in range(3):
        pub.publish("counted", b"x", qos=1)
    watcher = PahoClient(broker.address, client_id="sys")
    watcher.connect()
    watcher.subscribe("$SYS/broker/#")
    values: dict[str, bytes] = {}
    while not (int(values.get("$SYS/broker/publish/messages/received", b"0")) >= 3
               and values.get("$SYS/broker/clients/connected") == b"2"):
        message = watcher.message()
        values[message.topic] = message.payload
    assert values["$SYS/broker/version"] == f"mqlite {version('mqlite')}".encode()
    assert values["$SYS/broker/uptime"].endswith(b" seconds")
    assert int(values["$SYS/broker/messages/sent"]) >= 0
    assert "$SYS/broker/publish/messages/dropped" in values
    assert int(values["$SYS/broker/messages/received"]) >= 3 + 2  # and the CONNECTs


def test_wildcard_subscribers_do_not_see_sys(make_broker: BrokerFactory) -> None:
    broker = make_broker(sys_interval=0.1)
    client = PahoClient(broker.address, client_id="all")
    client.connect()
    client.subscribe("#")
    client.no_message(within=0.5)


def test_a_client_may_publish_only_its_own_connection_state(
        make_broker: BrokerFactory) -> None:
    """Under $SYS only ``$SYS/broker/connection/<own client id>/``, where a bridge reports
    its state; elsewhere MQTT 5 PUBACK 0x87, and nothing is routed."""
    broker = make_broker(sys_interval=0)
    watcher = PahoClient(broker.address, client_id="watcher", version=5)
    watcher.connect()
    watcher.subscribe("$SYS/#", qos=1)
    client = PahoClient(broker.address, client_id="node-1", version=5)
    client.connect()
    assert client.publish("$SYS/broker/connection/node-1/state", b"1", qos=1) == 0
    assert watcher.message().topic == "$SYS/broker/connection/node-1/state"
    for topic in ("$SYS/broker/connection/node-2/state", "$SYS/broker/connection/node-1",
                  "$SYS/broker/uptime"):
        assert client.publish(topic, b"x", qos=1) == ReasonCode.NOT_AUTHORIZED
    watcher.no_message()


def test_will_only_on_its_own_connection_state(broker: Broker) -> None:
    own = RawClient(broker.address)
    assert own.connect(client_id="b1", will=Will(
        topic="$SYS/broker/connection/b1/state", payload=b"0", retain=True)) == Connack()
    other = RawClient(broker.address)
    other.send(Connect(client_id="b2", will=Will(topic="$SYS/broker/connection/b1/state",
                                                 payload=b"0")))
    assert other.expect_closed() == [Connack(reason_code=ConnackReturnCode.NOT_AUTHORIZED)]
