"""MQTT over WebSocket on the client side (paho's ``transport="websockets"``): a socket-like
stream that does the HTTP upgrade (blocking, inside ``open_socket()``), then frames what the
client writes into binary frames and gives back the payloads of the frames it reads.

To the client and to an application's event loop it is a socket: ``fileno()`` for the
selector, ``recv_into()`` / ``send()`` that raise ``BlockingIOError`` when they would block.
Framed bytes the socket did not take wait inside it (``unsent``), so ``want_write()`` stays
true until they are out."""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

# What a read or write raises that means "not now" (the transport uses the same).
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class WebSocketError(ConnectionError):
    """The broker refused the upgrade, or broke the WebSocket protocol."""


def _handshake_error(exc: RemoteProtocolError) -> WebSocketError:
    """The broker's answer is no upgrade: the error, in paho's words."""
    text = str(exc).lower()
    if "connection: upgrade" in text or "upgrade: websocket" in text:
        return WebSocketError("WebSocket handshake error, connection not upgraded")
    if "accept" in text:
        return WebSocketError("WebSocket handshake error, invalid secret key")
    if "subprotocol" in text:  # RFC 6455 4.1: one the client did not offer fails it
        return WebSocketError(f"WebSocket handshake error, {exc}")
    return WebSocketError("WebSocket handshake error")


class WebSocketStream:
    def __init__(self, sock: Any, host: str, path: str,
                 headers: dict[str, str] | None = None) -> None:
        """Upgrade ``sock`` (connected, blocking, with a timeout) to a WebSocket."""
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._inbox = bytearray()
        self.unsent = b""
        self._closed = False
        extra = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
        sock.sendall(self.ws.send(Request(host=host, target=path, subprotocols=["mqtt"],
                                          extra_headers=extra)))
        try:
            while not self._answered():
                data = sock.recv(65536)
                if not data:
                    raise WebSocketError("WebSocket handshake error")  # (paho's words)
                self.ws.receive_data(data)
        except RemoteProtocolError as exc:
            raise _handshake_error(exc) from None

    def _answered(self) -> bool:
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self._take(self.ws.events())  # frames that came with the answer
                return True
            if isinstance(event, RejectConnection):
                raise WebSocketError(f"WebSocket handshake error, HTTP {event.status_code}")
            if isinstance(event, RejectData):
                continue
        return False

    def _take(self, events: Any) -> None:
        for event in events:
            if isinstance(event, BytesMessage):
                self._inbox += event.data
            elif isinstance(event, Ping):
                self.unsent += self.ws.send(event.response())
            elif isinstance(event, CloseConnection):
                with contextlib.suppress(LocalProtocolError):
                    self.unsent += self.ws.send(event.response())
                self._closed = True
            elif isinstance(event, TextMessage):
                raise WebSocketError("a text frame from the broker: MQTT uses binary frames")

    # -- the socket interface the client uses ------------------------------------------------

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def setblocking(self, flag: bool) -> None:
        self.sock.setblocking(flag)

    def pending(self) -> int:
        """Payload bytes read and not yet taken, which select() cannot see (with TLS, the
        decrypted bytes the TLS layer holds too)."""
        tls = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0
        return len(self._inbox) + tls

    def recv_into(self, buffer: bytearray | memoryview) -> int:
        """Payload bytes into ``buffer``; 0 once the WebSocket (or the socket) has closed."""
        while not self._inbox:
            if self._closed:
                return 0
            data = self.sock.recv(65536)  # BlockingIOError: nothing now
            if not data:
                return 0
            try:
                self.ws.receive_data(data)
                self._take(self.ws.events())
            except RemoteProtocolError as exc:
                raise WebSocketError(f"bad WebSocket input from the broker: {exc}") from None
        count = min(len(buffer), len(self._inbox))
        buffer[:count] = self._inbox[:count]
        del self._inbox[:count]
        return count

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Take ``data`` whole (framed; what the socket does not take now waits in
        ``unsent``), or nothing (0) while earlier frames are still waiting."""
        if not self.flush():
            return 0
        frame = self.ws.send(BytesMessage(data=bytes(data)))
        try:
            sent = self.sock.send(frame)
        except WOULD_BLOCK:
            sent = 0
        self.unsent = frame[sent:]
        return len(data)

    def flush(self) -> bool:
        """Write what waits; whether nothing waits any more."""
        if self.unsent:
            try:
                sent = self.sock.send(self.unsent)
            except WOULD_BLOCK:
                return False
            self.unsent = self.unsent[sent:]
        return not self.unsent

    def close(self) -> None:
        if not self._closed:
            with contextlib.suppress(OSError, LocalProtocolError):
                self.sock.send(self.ws.send(CloseConnection(code=1000)))
        self.sock.close()
