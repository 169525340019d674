"""WebSocket listeners: paho's websockets transport, and a raw WebSocket client (wsproto) for
what a library does not show: packets split over frames, several packets in one frame, a
wrong path, a text frame."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)

from mqlite.broker import Broker
from mqlite.broker.config.listener_config import ListenerConfig
from mqlite.protocol import (
    Connack,
    Connect,
    Packet,
    PacketReader,
    Pingreq,
    Pingresp,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    encode,
)

from ..broker.helpers import PahoClient

TIMEOUT = 5.0


@pytest.fixture
def ws_broker() -> Iterator[Broker]:
    with Broker(listeners=[ListenerConfig(type="ws", port=0, path="/mqtt", name="web"),
                           ListenerConfig(type="tcp", port=0, name="plain")],
                sys_interval=0) as broker:
        yield broker


class RawWebSocket:
    """A WebSocket client over a blocking socket, frames under the test's control."""

    def __init__(self, address: tuple[str, int], path: str = "/mqtt",
                 subprotocols: tuple[str, ...] = ("mqtt",)) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.reader = PacketReader("client", version=4)
        self.sock.sendall(self.ws.send(Request(host="localhost", target=path,
                                               subprotocols=list(subprotocols))))
        self.answer = self._next_event()

    def _next_event(self) -> object:
        while True:
            for event in self.ws.events():
                return event
            data = self.sock.recv(65536)
            if not data:
                return None
            self.ws.receive_data(data)

    def send_frames(self, *chunks: bytes) -> None:
        self.sock.sendall(b"".join(self.ws.send(BytesMessage(data=c)) for c in chunks))

    def packets(self, count: int) -> list[Packet]:
        got: list[Packet] = []
        while len(got) < count:
            event = self._next_event()
            assert isinstance(event, BytesMessage), event
            got.extend(self.reader.feed(bytes(event.data)))
        return got


def test_paho_over_websocket_reaches_a_tcp_subscriber(ws_broker: Broker) -> None:
    tcp = PahoClient(ws_broker.addresses["plain"], client_id="on-tcp")
    tcp.connect()
    tcp.subscribe("web/#", qos=1)
    web = PahoClient(ws_broker.addresses["web"], client_id="on-ws", transport="websockets")
    web.client.ws_set_options(path="/mqtt")
    web.connect()
    web.subscribe("back/#", qos=1)
    big = bytes(range(256)) * 1024  # 256 KiB: many frames' worth of TCP segments
    web.publish("web/big", big, qos=1)
    assert tcp.message().payload == big
    tcp.publish("back/x", b"to the browser side", qos=1)
    assert web.message().payload == b"to the browser side"
    web.stop()
    tcp.stop()


def test_a_packet_may_span_frames_and_a_frame_may_hold_several(ws_broker: Broker) -> None:
    client = RawWebSocket(ws_broker.addresses["web"])
    assert isinstance(client.answer, AcceptConnection)
    assert client.answer.subprotocol == "mqtt"
    connect = encode(Connect(client_id="framed"), 4)
    client.send_frames(connect[:3], connect[3:9], connect[9:])
    [connack] = client.packets(1)
    assert isinstance(connack, Connack) and connack.reason_code == 0
    subscribe = encode(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="f/#")]),
                       4)
    client.send_frames(subscribe + encode(Pingreq(), 4)
                       + encode(Publish(topic="f/1", payload=b"echo"), 4))
    suback, pingresp, echo = client.packets(3)
    assert isinstance(suback, Suback) and isinstance(pingresp, Pingresp)
    assert isinstance(echo, Publish) and echo.payload == b"echo"


def test_a_request_for_another_path_is_refused(ws_broker: Broker) -> None:
    client = RawWebSocket(ws_broker.addresses["web"], path="/elsewhere")
    assert isinstance(client.answer, RejectConnection) and client.answer.status_code == 404


def test_a_text_frame_closes_the_connection(ws_broker: Broker) -> None:
    client = RawWebSocket(ws_broker.addresses["web"])
    client.sock.sendall(client.ws.send(TextMessage(data="not mqtt")))
    event = client._next_event()
    assert isinstance(event, CloseConnection) and event.code == 1003


def test_a_plain_tcp_client_on_a_websocket_listener_is_closed(ws_broker: Broker) -> None:
    with socket.create_connection(ws_broker.addresses["web"], timeout=TIMEOUT) as sock:
        sock.sendall(encode(Connect(client_id="not-http"), 4))
        reply = sock.recv(1024)
        assert reply.startswith(b"HTTP/1.1 400") or reply == b""
