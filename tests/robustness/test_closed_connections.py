"""What a connection closed for bad input leaves behind: nothing (no Connection alive, no RSS
growth), and what its client still reads: the last packet, with its reason code."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading

import pytest

from mqlite.broker import Broker
from mqlite.broker.engine.connection import Connection
from mqlite.protocol import (
    Connect,
    Disconnect,
    Publish,
    Pubrec,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
    encode,
)
from mqlite.protocol.wire import encode_string, encode_vbi

from ..broker.helpers import TIMEOUT, RawClient, wait_until
from ..broker_process import BrokerProcess


def _frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_vbi(len(body)) + body


def _connect_v5(properties: bytes, tail: bytes = b"", flags: int = 0x02) -> bytes:
    body = (encode_string("MQTT") + bytes([5, flags]) + b"\x00\x3c" + encode_vbi(len(properties))
            + properties + encode_string("c") + tail)
    return _frame(0x10, body)


CONNECT_V311 = encode(Connect(client_id="bad"), 4)
# Each sends something the broker closes the connection for.
BAD_INPUTS: dict[str, bytes] = {
    "publish-before-connect": bytes.fromhex("300400017478"),
    "qos3-after-connect": CONNECT_V311 + bytes.fromhex("360400017478"),
    "session-expiry-twice": _connect_v5(b"\x11\x00\x00\x00\x0a" * 2),
    "invalid-will-property": _connect_v5(b"", b"\x02\x23\x00" + encode_string("w")
                                         + encode_string("x"), flags=0x06),
    "invalid-utf8-username": _connect_v5(b"", b"\x00\x02\xc0\xaf", flags=0x82),
}


def _send_bad(address: tuple[str, int], data: bytes) -> None:
    # Closed while sending: fine.
    with socket.create_connection(address, timeout=TIMEOUT) as sock, \
            contextlib.suppress(OSError):
        sock.sendall(data)
        while sock.recv(4096):
            pass


def _run_clients(address: tuple[str, int], count: int) -> None:
    """``count`` bad connections, every kind in turn, 20 at a time."""
    inputs = list(BAD_INPUTS.values())
    jobs = iter(range(count))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(jobs, None)
            if index is None:
                return
            _send_bad(address, inputs[index % len(inputs)])

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _live_connections() -> int:
    return sum(isinstance(obj, Connection) for obj in gc.get_objects())


def test_connections_closed_for_bad_input_are_freed() -> None:
    """After 2,000 of them, none is alive; with the collector off, so that no cycle is left
    for it to find either: a closed connection is freed when its socket closes."""
    with Broker(port=0) as broker:
        _run_clients(broker.address, 50)  # warm up
        wait_until(lambda: not broker.connections, what="the warm-up connections to close")
        gc.collect()
        assert _live_connections() == 0
        gc.disable()
        try:
            _run_clients(broker.address, 2_000)
            wait_until(lambda: not broker.connections, timeout=30,
                       what="every bad connection to close")
            # The loop's turn that closed the last ones may still hold them in its locals.
            wait_until(lambda: _live_connections() == 0,
                       what=f"the Connection objects to be freed ({_live_connections()} alive)")
        finally:
            gc.enable()


def test_broker_rss_stays_flat_after_bad_connections() -> None:
    with BrokerProcess() as broker:
        broker.discard_log()
        _run_clients(broker.address, 500)  # warm up: arenas, caches
        before = broker.rss_kib()
        _run_clients(broker.address, 2_000)
        growth = broker.rss_kib() - before
        assert growth < 2 * 1024, f"RSS grew by {growth} KiB over 2,000 bad connections"
        assert broker.terminate() == 0


def test_last_disconnect_arrives_although_the_client_was_still_writing(broker: Broker) -> None:
    """A client writes 16 MB of QoS 2 PUBLISHes on its own topic, past Receive Maximum and
    without PUBREL, before it reads anything. The broker closes it with DISCONNECT 0x93 while
    its copies of the first messages fill the client's window; it reads and discards the rest
    of the client's writes meanwhile, so the client's write completes and it reads everything
    the broker sent, the DISCONNECT last. (Closing with unread input would reset the
    connection, and the reset destroys the output not yet delivered.)"""
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="flooder")
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="flood")]))
    assert isinstance(raw.receive(), Suback)
    flood = b"".join(encode(Publish(topic="flood", payload=b"x" * 8000, qos=2,
                                    packet_id=i + 1), 5) for i in range(2000))
    try:
        raw.sock.sendall(flood)
    except ConnectionResetError:
        pytest.fail("the broker reset the connection while the client was writing")
    received = []
    raw.sock.settimeout(TIMEOUT)
    while True:
        try:
            data = raw.sock.recv(65_536)
        except ConnectionResetError:
            pytest.fail(f"connection reset after {len(received)} packets, no DISCONNECT")
        if not data:
            break
        received.extend(raw.reader.feed(data))
    raw.close()
    assert received[-1] == Disconnect(reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)
    assert sum(isinstance(p, Pubrec) for p in received) == 100
