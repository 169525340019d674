"""The external-event-loop contract, driven by selectors and by asyncio, as applications do."""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
from typing import Any

import mqlite.client as mqtt
from mqlite.broker import Broker
from tests.broker.helpers import PahoClient

TIMEOUT = 10.0


class SelectorDriver:
    """An application's own select loop, using only the public contract."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.selector = selectors.DefaultSelector()
        self.events: list[str] = []
        client.on_socket_open = self.opened
        client.on_socket_close = self.closed
        client.on_socket_register_write = self.register_write
        client.on_socket_unregister_write = self.unregister_write

    def opened(self, client: Any, userdata: Any, sock: Any) -> None:
        self.events.append("open")
        self.selector.register(sock, selectors.EVENT_READ)

    def closed(self, client: Any, userdata: Any, sock: Any) -> None:
        self.events.append("close")
        self.selector.unregister(sock)

    def register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self.events.append("register")
        self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self.events.append("unregister")
        self.selector.modify(sock, selectors.EVENT_READ)

    def run_until(self, condition: Any, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "condition not reached"
            wait = min(self.client.next_timeout() or 0.1, 0.1)
            for _key, mask in self.selector.select(wait):
                if mask & selectors.EVENT_READ:
                    self.client.loop_read()
                if mask & selectors.EVENT_WRITE and self.client.socket() is not None:
                    self.client.loop_write()
            if self.client.socket() is not None:
                self.client.loop_misc()


def check_lifecycle(events: list[str]) -> None:
    """paho's guarantee: open, then register/unregister pairs, then close."""
    assert events[0] == "open" and events[-1] == "close"
    middle = events[1:-1]
    assert "open" not in middle and "close" not in middle
    expected = "register"
    for event in middle:
        assert event == expected, events
        expected = "unregister" if expected == "register" else "register"


def test_selectors_loop_round_trip_and_callback_order(broker: Broker, version: int) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ext-select", protocol=version)
    driver = SelectorDriver(client)
    order: list[str] = []
    received: list[bytes] = []
    client.on_connect = lambda c, u, f, rc, p: (order.append("connect"), c.subscribe("ext/t", 1))
    client.on_subscribe = lambda c, u, mid, codes, p: order.append("subscribe")
    client.on_message = lambda c, u, m: (order.append("message"), received.append(m.payload))
    client.on_publish = lambda c, u, mid, rc, p: order.append("publish")
    client.on_disconnect = lambda c, u, f, rc, p: order.append("disconnect")
    client.connect(*broker.address)
    # connect() wrote CONNECT before it returned (as paho's does): a register/unregister pair.
    assert driver.events == ["open", "register", "unregister"]
    driver.run_until(lambda: "subscribe" in order)
    client.publish("ext/t", b"hello", qos=1)
    driver.run_until(lambda: received == [b"hello"] and "publish" in order)
    client.disconnect()
    driver.run_until(lambda: client.socket() is None)
    assert order[:2] == ["connect", "subscribe"]
    assert sorted(order[2:4]) == ["message", "publish"] and order[-1] == "disconnect"
    check_lifecycle(driver.events)
    assert client.loop_misc() == mqtt.MQTT_ERR_NO_CONN


def test_reads_never_block_and_large_messages_arrive_whole(broker: Broker) -> None:
    """loop_read on a socket with nothing to read returns at once; a 512 KiB payload arrives in
    one piece through the incremental reader."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ext-large")
    driver = SelectorDriver(client)
    received: list[bytes] = []
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("ext/large", 0)
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda c, u, m: received.append(m.payload)
    client.connect(*broker.address)
    driver.run_until(subscribed.is_set)
    started = time.monotonic()
    assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    assert time.monotonic() - started < 0.5
    payload = bytes(range(256)) * 2048  # 512 KiB, under the broker's 1 MiB packet limit
    client.publish("ext/large", payload)
    driver.run_until(lambda: bool(received))
    assert received == [payload]


def test_publish_from_another_thread_signals_register_write(broker: Broker) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ext-thread")
    driver = SelectorDriver(client)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(*broker.address)
    driver.run_until(connected.is_set)
    driver.run_until(lambda: not client.want_write())
    threads: list[str] = []
    client.on_socket_register_write = lambda c, u, s: (
        threads.append(threading.current_thread().name), driver.register_write(c, u, s))
    worker = threading.Thread(target=lambda: client.publish("ext/x", b"1"), name="worker")
    worker.start()
    worker.join()
    assert threads == ["worker"] and client.want_write()
    info = client.publish("ext/x", b"2")
    driver.run_until(info.is_published)


def test_asyncio_adapter_from_paho_examples_works_unchanged(broker: Broker) -> None:
    """The add_reader/add_writer adapter people wrote for paho drives mqlite's client."""

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ext-asyncio")
        got: asyncio.Queue[bytes] = asyncio.Queue()
        misc: list[asyncio.Task[None]] = []

        async def misc_loop() -> None:
            while client.loop_misc() == mqtt.MQTT_ERR_SUCCESS:
                await asyncio.sleep(1)

        def opened(c: Any, u: Any, sock: Any) -> None:
            loop.add_reader(sock, c.loop_read)
            misc.append(loop.create_task(misc_loop()))

        def closed(c: Any, u: Any, sock: Any) -> None:
            loop.remove_reader(sock)
            loop.remove_writer(sock)
            for task in misc:
                task.cancel()

        client.on_socket_open = opened
        client.on_socket_close = closed
        client.on_socket_register_write = lambda c, u, s: loop.add_writer(s, c.loop_write)
        client.on_socket_unregister_write = lambda c, u, s: loop.remove_writer(s)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe("ext/aio", 2)
        client.on_subscribe = lambda c, u, mid, codes, p: c.publish("ext/aio", b"via asyncio", 2)
        client.on_message = lambda c, u, m: got.put_nowait(m.payload)
        client.connect(*broker.address)
        payload = await asyncio.wait_for(got.get(), TIMEOUT)
        client.disconnect()
        for _ in range(100):
            if client.socket() is None:
                break
            await asyncio.sleep(0.01)
        return [payload]

    assert asyncio.run(main()) == [b"via asyncio"]


def test_paho_peer_receives_what_the_external_loop_sends(broker: Broker, version: int) -> None:
    peer = PahoClient(broker.address, "ext-peer", version)
    peer.connect()
    peer.subscribe("ext/peer", 2)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ext-sender", protocol=version)
    driver = SelectorDriver(client)
    client.connect(*broker.address)
    infos = [client.publish("ext/peer", b"m%d" % i, qos=i % 3) for i in range(9)]
    driver.run_until(lambda: all(info.is_published() for info in infos))
    # paho hands a QoS 2 message over at PUBREL, so QoS levels may interleave: compare sets.
    assert sorted(peer.message().payload for _ in range(9)) == [b"m%d" % i for i in range(9)]
    peer.stop()
