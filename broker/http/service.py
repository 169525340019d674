"""The http listeners' connections, on the broker's own selector and thread (no second server
or framework): read and answered through
:class:`~mqlite.broker.http.connection.HttpConnection` and :mod:`~mqlite.broker.http.admin_api`,
written after the turn's commit. At most ``max_connections`` at once per listener (32 unless
set), each closed after ``IDLE_SECONDS`` without a complete request. The event loop does the
socket calls (``SocketIO``): sockets stay in net/. server.py wires it to the loop: the http
listeners' acceptor, a flush after each turn, closing with the loop."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..net.listeners import Listener
from ..net.loop_driven import LoopDriven, SocketIO
from . import admin_api
from .connection import IDLE_SECONDS, HttpConnection, Response
from .metrics import RunningBroker

log = logging.getLogger("mqlite.broker")

DEFAULT_MAX_CONNECTIONS = 32


class _Watch(LoopDriven):
    """A connection's socket, as the loop's selector tells of it."""

    __slots__ = ("conn", "service")

    def __init__(self, service: HttpService, conn: HttpConnection) -> None:
        self.service = service
        self.conn = conn

    def event(self, readable: bool, writable: bool) -> None:
        self.service.event(self.conn, readable, writable, time.monotonic())


class HttpService:
    def __init__(self, broker: RunningBroker, io: SocketIO) -> None:
        self._broker = broker
        self._io = io
        self.connections: dict[HttpConnection, _Watch] = {}
        self._open: dict[Listener, int] = {}
        self._dirty: set[HttpConnection] = set()

    def accept(self, listener: Listener, sock: Any, peer: str, now: float) -> bool:
        """Take a new connection; False if the listener is full (the caller closes it)."""
        limit = listener.config.max_connections
        if limit == -1:
            limit = DEFAULT_MAX_CONNECTIONS
        if self._open.get(listener, 0) >= limit:
            self._broker.core.stats.connections_refused += 1
            return False
        conn = HttpConnection(sock, peer, listener, now + IDLE_SECONDS)
        self._open[listener] = self._open.get(listener, 0) + 1
        watch = self.connections[conn] = _Watch(self, conn)
        self._io.watch(sock, watch, write=False)
        self._arm(conn, now)
        return True

    def _arm(self, conn: HttpConnection, now: float) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
        conn.timer = self._broker.core.system_timers.call_at(now + IDLE_SECONDS, self._idle,
                                                             conn)

    def _idle(self, conn: HttpConnection) -> None:
        self.close(conn)

    def event(self, conn: HttpConnection, readable: bool, writable: bool, now: float) -> None:
        if writable:
            self._dirty.add(conn)
        if not readable or conn.closed:
            return
        try:
            data = self._io.receive(conn.sock)
        except OSError:
            self.close(conn)
            return
        if data is None:
            return
        self._broker.core.stats.bytes_received += len(data)
        requests = conn.receive(data)
        if not data and not conn.out:
            self.close(conn)  # the peer is done and so are we
            return
        while requests:
            self._answer(conn, requests[0])
            self._arm(conn, now)
            requests = conn.pending()
        if conn.closed or conn.out:
            self._dirty.add(conn)

    def _answer(self, conn: HttpConnection, request: Any) -> None:
        core = self._broker.core
        address = conn.listener.address
        host = address if isinstance(address, str) else address[0]
        try:
            response = admin_api.handle(self._broker, request, host, core.config.admin_token)
        except Exception:  # a bug must cost this request, never the broker
            log.exception("internal error answering %s %s", request.method, request.target)
            response = Response(500, admin_api.JSON, b'{"error":"internal error"}')
        conn.respond(response)

    def flush(self) -> None:
        """After the turn's commit: write what is queued; close what is done."""
        dirty = list(self._dirty)
        self._dirty.clear()
        for conn in dirty:
            if conn not in self.connections:
                continue
            if conn.out:
                try:
                    sent = self._io.transmit(conn.sock, conn.out)
                except OSError:
                    self.close(conn)
                    continue
                self._broker.core.stats.bytes_sent += sent
                del conn.out[:sent]
            if conn.out:
                self._io.watch(conn.sock, self.connections[conn], write=True)
            elif conn.closed:
                self.close(conn)
            else:
                self._io.watch(conn.sock, self.connections[conn], write=False)

    def close(self, conn: HttpConnection) -> None:
        if conn not in self.connections:
            return
        del self.connections[conn]
        self._dirty.discard(conn)
        self._open[conn.listener] -= 1
        if conn.timer is not None:
            conn.timer.cancel()
        self._io.forget(conn.sock)

    def close_all(self) -> None:
        for conn in list(self.connections):
            self.close(conn)
