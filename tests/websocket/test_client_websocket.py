"""mqlite's client over WebSocket (``transport="websockets"``, paho's ``ws_set_options``),
against the broker's ws and wss listeners, with the built-in loop and an external one."""

from __future__ import annotations

import queue
import selectors
from collections.abc import Iterator
from typing import Any

import pytest

import mqlite.client as mqtt
from mqlite.broker import Broker
from mqlite.broker.config.listener_config import ListenerConfig

from ..tls_certs import Certificates

TIMEOUT = 10


@pytest.fixture
def broker(certificates: Certificates) -> Iterator[Broker]:
    listeners = [ListenerConfig(type="ws", port=0, path="/mqtt", name="ws"),
                 ListenerConfig(type="wss", port=0, path="/mqtt", name="wss",
                                certfile=str(certificates.server_cert),
                                keyfile=str(certificates.server_key))]
    with Broker(listeners=listeners, sys_interval=0) as running:
        yield running


def round_trip(client: mqtt.Client, port: int) -> None:
    received: queue.Queue[bytes] = queue.Queue()
    client.on_connect = lambda c, u, flags, rc, props: c.subscribe("ws/#", 1)
    client.on_subscribe = lambda c, u, mid, codes, props: c.publish("ws/big", big, qos=1)
    client.on_message = lambda c, u, message: received.put(message.payload)
    big = bytes(range(256)) * 2048  # 512 KiB: the socket takes it in several writes
    client.ws_set_options(path="/mqtt", headers={"X-Test": "yes"})
    client.connect("localhost", port)
    client.loop_start()
    try:
        assert received.get(timeout=TIMEOUT) == big
    finally:
        client.disconnect()
        client.loop_stop()


def test_over_ws_with_the_built_in_loop(broker: Broker) -> None:
    round_trip(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "ws-client",
                           transport="websockets"), broker.addresses["ws"][1])


def test_over_wss(broker: Broker, certificates: Certificates) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "wss-client", transport="websockets")
    client.tls_set(ca_certs=str(certificates.ca))
    round_trip(client, broker.addresses["wss"][1])


def test_over_ws_with_an_external_loop(broker: Broker) -> None:
    selector = selectors.DefaultSelector()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "ws-external", transport="websockets")
    client.on_socket_open = lambda c, u, sock: selector.register(sock, selectors.EVENT_READ)
    client.on_socket_close = lambda c, u, sock: selector.unregister(sock)
    client.on_socket_register_write = lambda c, u, sock: selector.modify(
        sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    client.on_socket_unregister_write = lambda c, u, sock: selector.modify(
        sock, selectors.EVENT_READ)
    got: list[Any] = []
    client.on_connect = lambda c, u, flags, rc, props: c.subscribe("loop/#", 1)
    client.on_subscribe = lambda c, u, mid, codes, props: c.publish("loop/x", b"y" * 300_000, 1)
    client.on_message = lambda c, u, message: (got.append(message.payload), c.disconnect())
    client.connect("127.0.0.1", broker.addresses["ws"][1])
    for _ in range(10_000):
        if client.socket() is None:
            break
        for _key, events in selector.select(1.0):
            if events & selectors.EVENT_READ:
                client.loop_read()
            if events & selectors.EVENT_WRITE and client.socket() is not None:
                client.loop_write()
        client.loop_misc()
    assert got == [b"y" * 300_000]


def test_a_refused_upgrade_is_an_oserror(broker: Broker) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "lost", transport="websockets")
    client.ws_set_options(path="/not-here")
    with pytest.raises(OSError, match="HTTP 404"):
        client.connect("127.0.0.1", broker.addresses["ws"][1])
