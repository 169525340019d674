"""What the client fixes over paho: offline queueing, resubscribing, reconnect with backoff,
thread-safe publish, callbacks that raise."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import mqlite.client as mqtt
from mqlite.broker import Broker
from tests.broker.helpers import PahoClient, wait_until
from tests.conftest import BrokerFactory

TIMEOUT = 10.0


def started(client: mqtt.Client) -> mqtt.Client:
    client.loop_start()
    return client


@pytest.fixture
def clients() -> Any:
    made: list[mqtt.Client] = []

    def make(*args: Any, **kwargs: Any) -> mqtt.Client:
        if not args or not isinstance(args[0], mqtt.CallbackAPIVersion):
            kwargs.setdefault("callback_api_version", mqtt.CallbackAPIVersion.VERSION2)
        client = mqtt.Client(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.disconnect()
        client.loop_stop()


def subscriber(broker: Broker, topic: str, qos: int = 1) -> PahoClient:
    peer = PahoClient(broker.address, f"peer-{topic.replace('/', '-')}")
    peer.connect()
    peer.subscribe(topic, qos)
    return peer


def test_publish_while_offline_is_queued_and_waited_for(broker: Broker, clients: Any) -> None:
    peer = subscriber(broker, "off/#")
    client = clients(client_id="offline-pub")
    infos = [client.publish("off/a", b"%d" % i, qos=i % 3) for i in range(6)]
    assert [info.rc for info in infos] == [mqtt.MQTT_ERR_SUCCESS] * 6
    assert not infos[0].is_published()
    client.connect_async(*broker.address)
    started(client)
    for info in infos:
        assert info.wait_for_publish(TIMEOUT)
    assert sorted(peer.message().payload for _ in range(6)) == [b"%d" % i for i in range(6)]
    peer.stop()


def test_offline_queue_is_bounded(clients: Any) -> None:
    client = clients(client_id="bounded").max_queued_messages_set(3)
    infos = [client.publish("b/t", b"x", qos=1) for _ in range(4)]
    assert [info.rc for info in infos[:3]] == [mqtt.MQTT_ERR_SUCCESS] * 3
    assert infos[3].rc == mqtt.MQTT_ERR_QUEUE_SIZE
    with pytest.raises(ValueError):
        infos[3].wait_for_publish(0.1)


def test_subscribe_while_offline(broker: Broker, clients: Any) -> None:
    got = threading.Event()
    client = clients(client_id="offline-sub")
    client.on_message = lambda c, u, m: got.set()
    rc, mid = client.subscribe("offsub/t", 1)
    assert rc == mqtt.MQTT_ERR_SUCCESS and mid
    acked = threading.Event()
    client.on_subscribe = lambda c, u, m, codes, p: acked.set() if m == mid else None
    client.connect(*broker.address)
    started(client)
    assert acked.wait(TIMEOUT)
    client.publish("offsub/t", b"self", qos=1)
    assert got.wait(TIMEOUT)


def test_many_threads_publish_at_once(broker: Broker, clients: Any) -> None:
    peer = subscriber(broker, "threads/#")
    client = clients(client_id="threads")
    client.connect(*broker.address)
    started(client)
    per_thread, thread_count = 300, 4
    infos: list[list[mqtt.MQTTMessageInfo]] = [[] for _ in range(thread_count)]

    def work(index: int) -> None:
        for i in range(per_thread):
            infos[index].append(client.publish(f"threads/{index}", b"%d" % i, qos=1))

    workers = [threading.Thread(target=work, args=(n,)) for n in range(thread_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for batch in infos:
        for info in batch:
            assert info.wait_for_publish(TIMEOUT)
    mids = [info.mid for batch in infos for info in batch]
    assert len(set(mids)) == len(mids)
    seen: dict[str, list[int]] = {}
    for _ in range(per_thread * thread_count):
        message = peer.message()
        seen.setdefault(message.topic, []).append(int(message.payload))
    # Each thread's messages arrive complete and in its order.
    assert seen == {f"threads/{n}": list(range(per_thread)) for n in range(thread_count)}
    peer.stop()


def test_callback_exception_is_logged_and_the_loop_lives_on(
    broker: Broker, clients: Any, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[bytes] = []
    both = threading.Event()

    def on_message(c: Any, u: Any, message: Any) -> None:
        received.append(message.payload)
        if len(received) == 2:
            both.set()
        if message.payload == b"boom":
            raise RuntimeError("callback bug")

    client = clients(client_id="raiser")
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("raise/t", 1)
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(*broker.address)
    with caplog.at_level(logging.ERROR, logger="mqlite.client"):
        started(client)
        assert subscribed.wait(TIMEOUT)
        client.publish("raise/t", b"boom", qos=1)
        client.publish("raise/t", b"after", qos=1)
        assert both.wait(TIMEOUT)
    assert received == [b"boom", b"after"]
    assert "callback bug" in caplog.text
    assert client.is_connected()


def test_external_loop_raises_callback_errors_but_keeps_state(broker: Broker) -> None:
    """Outside the built-in loops exceptions propagate (paho's default), and the client keeps
    working: later packets still reach their callbacks."""
    from tests.client.test_external_loop import SelectorDriver

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ext-raiser")
    driver = SelectorDriver(client)
    calls: list[str] = []

    def on_connect(c: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
        calls.append("connect")
        raise ValueError("on_connect bug")

    client.on_connect = on_connect
    client.on_subscribe = lambda *args: calls.append("subscribe")
    client.connect(*broker.address)
    with pytest.raises(ValueError, match="on_connect bug"):
        driver.run_until(lambda: False, timeout=TIMEOUT)
    client.subscribe("ext/raise", 0)
    driver.run_until(lambda: "subscribe" in calls)
    assert calls == ["connect", "subscribe"]
    client.suppress_exceptions = True
    client.on_message = lambda c, u, m: 1 / 0
    client.publish("ext/raise", b"x")
    driver.run_until(lambda: client.socket() is not None and not client.want_write())


def test_reconnects_after_broker_restart_and_resubscribes(
    make_broker: BrokerFactory, clients: Any
) -> None:
    """The broker restarts without the session (in-memory store): the client reconnects by
    itself and makes its subscription again, though the program subscribed only once."""
    first = make_broker()
    port = first.address[1]
    got: list[bytes] = []
    connects: list[bool] = []
    arrived = threading.Event()
    client = clients(client_id="restart", clean_session=False)
    client.reconnect_delay_set(0.05, 0.2)
    client.on_connect = lambda c, u, f, rc, p: connects.append(f.session_present)
    client.on_message = lambda c, u, m: (got.append(m.payload), arrived.set())
    client.subscribe("restart/t", 1)
    client.connect("127.0.0.1", port)
    started(client)
    wait_until(lambda: len(connects) == 1)
    first.stop()
    second = make_broker(port=port)
    wait_until(lambda: len(connects) == 2 and client.is_connected(), what="reconnect")
    assert connects == [False, False]
    publisher = PahoClient(second.address, "restart-pub")
    publisher.connect()
    # The resubscription is asynchronous: publish until one lands.
    wait_until(lambda: (publisher.publish("restart/t", b"again", qos=1), arrived.wait(0.2))[1],
               what="message after restart")
    assert got and set(got) == {b"again"}
    publisher.stop()


def test_loop_forever_returns_after_disconnect(broker: Broker) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="forever")
    client.on_connect = lambda c, u, f, rc, p: c.publish("f/t", b"bye", qos=1)
    client.on_publish = lambda c, u, mid, rc, p: c.disconnect()
    client.connect(*broker.address)
    assert client.loop_forever() == mqtt.MQTT_ERR_SUCCESS
    assert not client.is_connected()


def test_mqtt5_empty_client_id_is_assigned(broker: Broker) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv5)
    results: list[Any] = []
    client.on_connect = lambda c, u, f, rc, p: results.append(rc)
    client.connect(*broker.address, keepalive=60)
    client.loop_start()
    wait_until(lambda: bool(results))
    client.disconnect()
    client.loop_stop()
    assert results[0] == 0 and client.client_id  # the broker's Assigned Client Identifier


def test_on_connect_fail_and_backoff(clients: Any) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    failures = threading.Event()
    count: list[int] = []
    client = clients(client_id="nobody-home")
    client.reconnect_delay_set(0.01, 0.02)
    client.on_connect_fail = lambda c, u: (count.append(1), len(count) >= 3 and failures.set())
    client.connect_async("127.0.0.1", port)
    client.loop_start()
    assert failures.wait(TIMEOUT)


def test_more_queued_messages_than_packet_ids(broker: Broker, clients: Any) -> None:
    """Wire ids are taken when a message enters the in-flight window, so 70,000 QoS 1
    messages can wait behind it (there are only 65,535 packet ids)."""
    client = clients(client_id="many")
    infos = [client.publish("many/t", b"", qos=1) for _ in range(70_000)]
    assert all(info.rc == mqtt.MQTT_ERR_SUCCESS for info in infos)
    client.connect(*broker.address)
    started(client)
    assert infos[-1].wait_for_publish(60) and all(info.is_published() for info in infos)


def test_keepalive_pings_keep_an_idle_connection_open(broker: Broker, clients: Any) -> None:
    """The broker drops a client silent for 1.5 x keepalive; loop_misc's PINGREQs prevent it."""
    client = clients(client_id="pinger")
    dropped = threading.Event()
    client.on_disconnect = lambda *args: dropped.set()
    client.connect(*broker.address, keepalive=1)
    started(client)
    assert not dropped.wait(3.5)  # more than 3 keepalive periods
    assert client.is_connected()
