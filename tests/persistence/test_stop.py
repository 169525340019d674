"""A stop (SIGTERM, SIGINT, Broker.stop) first handles what clients had already sent: an
acknowledgement in the socket buffer is processed and committed, so its message is not
delivered again after the restart. The loop is turned by hand here, so that the PUBACK is
certain to be unread when the stop comes."""

from __future__ import annotations

import select
from collections.abc import Callable
from pathlib import Path

from mqlite.broker import Broker, BrokerConfig
from mqlite.broker.engine.core import BrokerCore
from mqlite.broker.net.loop import EventLoop
from mqlite.broker.storage.sqlite_store import SQLiteStore
from mqlite.protocol import Connack, Connect, Puback, Publish, Suback, Subscribe, Subscription

from ..broker.helpers import RawClient


def _turn_until(loop: EventLoop, ready: Callable[[], bool]) -> None:
    for _ in range(200):
        if ready():
            return
        loop.turn(max_wait=0.05)
    raise AssertionError("the broker did not get there in 200 turns")


def _readable(client: RawClient) -> Callable[[], bool]:
    return lambda: bool(select.select([client.sock], [], [], 0)[0])


def test_an_acknowledgement_that_arrived_before_the_stop_is_kept(tmp_path: Path) -> None:
    db = str(tmp_path / "stop.db")
    config = BrokerConfig(port=0)
    store = SQLiteStore(db)
    loop = EventLoop(BrokerCore(config, store), config)
    address = loop.listen("127.0.0.1", 0)

    subscriber = RawClient(address)
    subscriber.send(Connect(client_id="keeper", clean_start=False))
    _turn_until(loop, _readable(subscriber))
    assert subscriber.receive() == Connack()
    subscriber.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="t", qos=1)]))
    _turn_until(loop, _readable(subscriber))
    assert isinstance(subscriber.receive(), Suback)
    publisher = RawClient(address)
    publisher.send(Connect(client_id="pub"))
    _turn_until(loop, _readable(publisher))
    publisher.receive()
    publisher.send(Publish(topic="t", payload=b"once", qos=1, packet_id=1))
    _turn_until(loop, _readable(subscriber))
    delivered = subscriber.receive()
    assert isinstance(delivered, Publish) and delivered.packet_id is not None

    subscriber.send(Puback(packet_id=delivered.packet_id))  # in its socket buffer, unread
    loop.request_stop()
    loop.run()  # stops at once: no ordinary turn reads the PUBACK
    store.close()

    with Broker(port=0, db=db) as again:
        assert not again.core.sessions["keeper"].inflight
        resumed = RawClient(again.address)
        assert resumed.connect(client_id="keeper", clean_start=False).session_present
        resumed.ping()  # a PUBLISH sent again would come before the PINGRESP
