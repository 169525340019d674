"""Two mqlite brokers bridged both ways on the same topics: no echo, in both protocol
versions (MQTT 5 subscription options; MQTT 3.1.1 the bridge bit, which mqlite honours)."""

from __future__ import annotations

from pathlib import Path

from mqlite.broker.bridge.config import BridgeConfig, BridgeTopic

from ..broker.helpers import PahoClient, wait_until
from ..conftest import BrokerFactory


def test_a_thousand_messages_each_arrive_once_per_side(make_broker: BrokerFactory,
                                                       tmp_path: Path, version: int) -> None:
    central = make_broker(db=str(tmp_path / "central.db"))
    edge = make_broker(db=str(tmp_path / "edge.db"), bridges=[BridgeConfig(
        name="up", addresses=(f"127.0.0.1:{central.address[1]}",), protocol=version,
        client_id="edge", restart_timeout=(0.05, 0.2),
        topics=(BridgeTopic(pattern="sync/#", direction="both", qos=1),))])
    bridge = edge.bridges[0]
    wait_until(lambda: bridge.stats.connected and bridge.stats.subscribed,
               what="the bridge to connect and subscribe")
    subscribers = []
    for broker, name in ((edge, "edge-sub"), (central, "central-sub")):
        subscriber = PahoClient(broker.address, client_id=name)
        subscriber.connect()
        subscriber.subscribe("sync/#", 1)
        subscribers.append(subscriber)
    publishers = []
    for broker, name in ((edge, "edge-pub"), (central, "central-pub")):
        publisher = PahoClient(broker.address, client_id=name)
        publisher.connect()
        publishers.append(publisher)
    for number in range(500):
        publishers[0].publish("sync/edge", b"e%d" % number, qos=1)
        publishers[1].publish("sync/central", b"c%d" % number, qos=1)
    expected = sorted([b"e%d" % n for n in range(500)] + [b"c%d" % n for n in range(500)])
    for subscriber in subscribers:
        assert sorted(subscriber.message().payload for _ in range(1000)) == expected
    for subscriber in subscribers:
        subscriber.no_message()
