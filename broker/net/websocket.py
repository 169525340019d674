"""MQTT over WebSocket on the server side, as browsers and MQTT.js speak it: an HTTP upgrade
with the subprotocol ``mqtt``, then binary frames whose payloads form one byte stream (a packet
may span frames, a frame may hold several packets). Sans-IO on ``wsproto``: the event loop
feeds it what the socket gave and writes what it returns."""

from __future__ import annotations

import contextlib

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..engine.connection import NO_OUTPUT, Connection, Framing
from ..engine.stats import Stats
from .tls import WOULD_BLOCK

# Subprotocols MQTT clients ask for: "mqtt" (MQTT 3.1.1 and 5), "mqttv3.1" (MQTT 3.1).
SUBPROTOCOLS = ("mqtt", "mqttv3.1")
# Close codes (RFC 6455 section 7.4.1).
NORMAL_CLOSURE = 1000
UNSUPPORTED_DATA = 1003


class WebSocketTransport:
    """One connection's WebSocket layer. ``receive()`` gives the MQTT bytes in what was read;
    ``frame()`` wraps MQTT bytes to send; control replies (the upgrade answer, pongs, a close)
    wait in ``to_send``; ``closed`` says why the WebSocket ended, if it did."""

    __slots__ = ("accepted", "closed", "final", "path", "to_send", "unsent", "ws")

    def __init__(self, path: str | None) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.path = path  # the only request path accepted; None: any
        self.accepted = False
        self.to_send = bytearray()
        self.final = b""  # our close frame: it goes after the last MQTT bytes
        # Framed bytes the socket did not take yet (kept here: framing them again would be
        # wrong).
        self.unsent = b""
        self.closed: str | None = None

    def receive(self, data: bytes | memoryview) -> bytes:
        mqtt = bytearray()
        try:
            self.ws.receive_data(bytes(data))
            for event in self.ws.events():
                if isinstance(event, Request):
                    self._upgrade(event)
                elif isinstance(event, BytesMessage):
                    mqtt += event.data
                elif isinstance(event, TextMessage):
                    self.close(UNSUPPORTED_DATA, "a text frame: MQTT uses binary frames")
                elif isinstance(event, Ping):
                    self.to_send += self.ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    if self.ws.state == ConnectionState.REMOTE_CLOSING:
                        self.to_send += self.ws.send(event.response())
                    self.closed = self.closed or "WebSocket closed by the client"
        except RemoteProtocolError as exc:
            self.closed = f"bad WebSocket input: {exc}"
            if exc.event_hint is not None and not self.accepted:
                self.to_send += self.ws.send(exc.event_hint)
        return bytes(mqtt)

    def _upgrade(self, request: Request) -> None:
        if self.path is not None and request.target.split("?", 1)[0] != self.path:
            self.to_send += self.ws.send(RejectConnection(status_code=404))
            self.closed = f"WebSocket request for {request.target!r}, not {self.path!r}"
            return
        offered = [s for s in request.subprotocols if s in SUBPROTOCOLS]
        self.to_send += self.ws.send(AcceptConnection(subprotocol=offered[0] if offered
                                                      else None))
        self.accepted = True

    def frame(self, data: bytes) -> bytes:
        """MQTT bytes as one binary frame (nothing before the upgrade is accepted)."""
        if not self.accepted or self.ws.state != ConnectionState.OPEN:
            return b""
        return self.ws.send(BytesMessage(data=data))

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Queue a close frame (once); the connection is to end."""
        if self.accepted and self.ws.state == ConnectionState.OPEN:
            with contextlib.suppress(LocalProtocolError):
                self.final = self.ws.send(CloseConnection(code=code, reason=reason[:120]))
        self.closed = self.closed or reason or "WebSocket closed"

    def take(self, mqtt: list[bytes]) -> bytes:
        """Everything to write now, in order: what the socket did not take last time, control
        replies, ``mqtt`` framed, and our close frame if the connection is ending."""
        data = self.unsent + bytes(self.to_send)
        self.to_send.clear()
        self.unsent = b""
        if mqtt:
            data += self.frame(b"".join(mqtt))
        if self.final:
            data += self.final
            self.final = b""
        return data


def send_framed(conn: Connection, websocket: Framing, stats: Stats) -> str | None:
    """Frame ``conn``'s output (a close frame after it if the connection is closing) and send
    what the socket takes, keeping the rest as unsent; the socket's error, if it failed."""
    if not conn.open:
        websocket.close()
    stats.bytes_sent += sum(map(len, conn.out))  # MQTT bytes, before framing
    data = websocket.take(conn.out)
    conn.out = NO_OUTPUT
    if data:
        try:
            sent = conn.sock.send(data)
        except WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            return f"socket error: {exc.strerror or exc}"
        websocket.unsent = data[sent:]
    conn.out_size = len(websocket.unsent)
    return None
