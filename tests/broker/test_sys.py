"""$SYS/broker/... topics: version, uptime, clients, message counters."""

from __future__ import annotations

from importlib.metadata import version

from ..conftest import BrokerFactory
from .helpers import PahoClient


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
    while not (int(values.get("$SYS/broker/messages/received", b"0")) >= 3
               and values.get("$SYS/broker/clients/connected") == b"2"):
        message = watcher.message()
        values[message.topic] = message.payload
    assert values["$SYS/broker/version"] == f"mqlite {version('mqlite')}".encode()
    assert values["$SYS/broker/uptime"].endswith(b" seconds")
    assert int(values["$SYS/broker/messages/sent"]) >= 0
    assert "$SYS/broker/messages/dropped" in values


def test_wildcard_subscribers_do_not_see_sys(make_broker: BrokerFactory) -> None:
    broker = make_broker(sys_interval=0.1)
    client = PahoClient(broker.address, client_id="all")
    client.connect()
    client.subscribe("#")
    client.no_message(within=0.5)
