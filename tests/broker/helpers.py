"""Test clients: a raw socket speaking through mqlite's codec (exact bytes, bad input), and
paho-mqtt on its own network thread recording what it sees. Waits have timeouts; no sleeps."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from mqlite.protocol import (
    Connack,
    Connect,
    Packet,
    PacketReader,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    encode,
)

TIMEOUT = 5.0


class RawClient:
    """A TCP connection that sends packets or raw bytes and reads packets back."""

    def __init__(self, address: tuple[str, int] | str, version: int = 4) -> None:
        """``address``: (host, port), or a unix socket's path."""
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(TIMEOUT)
            self.sock.connect(address)
        else:
            self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.version = version
        self.reader = PacketReader("client", version=version)

    def send(self, packet: Packet) -> None:
        self.sock.sendall(encode(packet, self.version))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def connect(self, client_id: str = "raw", **fields: Any) -> Connack:
        fields.setdefault("protocol_version", self.version)
        self.send(Connect(client_id=client_id, **fields))
        connack = self.receive()
        assert isinstance(connack, Connack), connack
        return connack

    def receive(self, timeout: float = TIMEOUT) -> Packet:
        """The next packet; AssertionError if none comes or the broker closes."""
        deadline = time.monotonic() + timeout
        while True:
            for packet in self.reader.feed(b""):
                return packet
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError("no packet from the broker in time") from None
            if not data:
                raise AssertionError("the broker closed the connection")
            self.reader.feed(data)

    def expect_closed(self, timeout: float = TIMEOUT) -> list[Packet]:
        """Read until the broker closes the connection; the packets it sent first."""
        packets: list[Packet] = []
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"still open after {timeout}s; got {packets}") from None
            except ConnectionResetError:
                return packets
            if not data:
                return packets
            packets.extend(self.reader.feed(data))

    def subscribe(self, topic_filter: str, qos: int = 0, packet_id: int = 1) -> Suback:
        self.send(Subscribe(packet_id=packet_id,
                            subscriptions=[Subscription(topic_filter=topic_filter, qos=qos)]))
        suback = self.receive()
        assert isinstance(suback, Suback), suback
        return suback

    def take(self, count: int) -> list[bytes]:
        """The payloads of the next ``count`` packets, each a QoS 1 PUBLISH, acknowledged."""
        payloads = []
        for _ in range(count):
            message = self.receive()
            assert isinstance(message, Publish) and message.qos == 1, message
            assert message.packet_id is not None
            self.send(Puback(packet_id=message.packet_id))
            payloads.append(message.payload)
        return payloads

    def ping(self) -> None:
        self.send(Pingreq())
        assert isinstance(self.receive(), Pingresp)

    def close(self) -> None:
        self.sock.close()


class PahoClient:
    """paho-mqtt with loop_start(); every callback lands in a queue the test can wait on."""

    def __init__(self, address: tuple[str, int], client_id: str = "", version: int = 4,
                 clean: bool = True, **kwargs: Any) -> None:
        self.address = address
        self.version = version
        protocol = {3: paho.MQTTv31, 4: paho.MQTTv311, 5: paho.MQTTv5}[version]
        extra: dict[str, Any] = {}
        if version != 5:
            extra["clean_session"] = clean
        self.clean = clean
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol, **extra, **kwargs)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        c = self.client
        c.on_connect = lambda cl, u, flags, rc, props: self.events.put(
            ("connect", (flags.session_present, rc, props)))
        c.on_disconnect = lambda cl, u, flags, rc, props: self.events.put(("disconnect", rc))
        c.on_subscribe = lambda cl, u, mid, rcs, props: self.events.put(("subscribe", rcs))
        c.on_unsubscribe = lambda cl, u, mid, rcs, props: self.events.put(("unsubscribe", rcs))
        c.on_publish = lambda cl, u, mid, rc, props: self.events.put(("publish", (mid, rc)))
        c.on_message = lambda cl, u, msg: self.messages.put(msg)

    def connect(self, keepalive: int = 60, session_expiry: int | None = None,
                properties: PahoProperties | None = None) -> tuple[bool, Any, Any]:
        if self.version == 5:
            if properties is None:
                properties = PahoProperties(PacketTypes.CONNECT)
            if session_expiry is not None:
                properties.SessionExpiryInterval = session_expiry
            self.client.connect(*self.address, keepalive=keepalive, clean_start=self.clean,
                                properties=properties)
        else:
            self.client.connect(*self.address, keepalive=keepalive)
        self.client.loop_start()
        result: tuple[bool, Any, Any] = self.wait("connect")
        return result

    def wait(self, name: str, timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                event, value = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {name!r} event in {timeout}s") from None
            if event == name:
                return value

    def subscribe(self, topic: Any, qos: int = 0, **kwargs: Any) -> list[Any]:
        self.client.subscribe(topic, qos, **kwargs)
        codes: list[Any] = self.wait("subscribe")
        return codes

    def publish(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False,
                properties: PahoProperties | None = None) -> Any:
        """Publish; for QoS 1/2 wait for the acknowledgement and return its reason code."""
        info = self.client.publish(topic, payload, qos, retain, properties)
        if not qos:
            return None
        while True:
            mid, rc = self.wait("publish")
            if mid == info.mid:
                return rc

    def message(self, timeout: float = TIMEOUT) -> paho.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message in {timeout}s") from None

    def no_message(self, within: float = 0.3) -> None:
        """Assert that nothing arrives; only for proving an absence."""
        try:
            msg = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {msg.topic}: {msg.payload!r}")

    def disconnect(self, **kwargs: Any) -> None:
        self.client.disconnect(**kwargs)
        self.wait("disconnect")
        self.client.loop_stop()

    def stop(self) -> None:
        """Drop the connection without DISCONNECT (as a crash would)."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    """Poll a condition on the broker's state (set by its thread) until true."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        event.wait(0.01)


def props(packet_type: int, **values: Any) -> PahoProperties:
    result = PahoProperties(packet_type)
    for name, value in values.items():
        setattr(result, name, value)
    return result


__all__ = ["TIMEOUT", "PahoClient", "Properties", "RawClient", "props", "wait_until"]
