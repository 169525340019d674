"""The http listeners' connections, on the broker's own selector and thread (no second server
or framework): accepted here, read and answered through
:class:`~mqlite.broker.http_connection.HttpConnection` and :mod:`~mqlite.broker.admin_api`,
written after the turn's commit. At most ``max_connections`` at once per listener (32 unless
set), each closed after ``IDLE_SECONDS`` without a complete request."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
from typing import Any

from . import admin_api
from .http_connection import IDLE_SECONDS, HttpConnection, Response
from .listeners import Listener
from .metrics import RunningBroker
from .tls import WOULD_BLOCK

log = logging.getLogger("mqlite.broker")

DEFAULT_MAX_CONNECTIONS = 32
READ_SIZE = 64 * 1024


class HttpService:
    def __init__(self, broker: RunningBroker, selector: selectors.BaseSelector) -> None:
        self._broker = broker
        self._selector = selector
        self.connections: set[HttpConnection] = set()
        self._open: dict[Listener, int] = {}
        self._dirty: set[HttpConnection] = set()

    def accept(self, listener: Listener, sock: socket.socket, peer: str, now: float) -> None:
        limit = listener.config.max_connections
        if limit == -1:
            limit = DEFAULT_MAX_CONNECTIONS
        if self._open.get(listener, 0) >= limit:
            sock.close()
            self._broker.core.stats.connections_refused += 1
            return
        sock.setblocking(False)
        conn = HttpConnection(sock, peer, listener, now + IDLE_SECONDS)
        self._open[listener] = self._open.get(listener, 0) + 1
        self.connections.add(conn)
        self._selector.register(sock, selectors.EVENT_READ, conn)
        self._arm(conn, now)

    def _arm(self, conn: HttpConnection, now: float) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
        conn.timer = self._broker.core.timers.call_at(now + IDLE_SECONDS, self._idle, conn)

    def _idle(self, conn: HttpConnection) -> None:
        self.close(conn)

    def event(self, conn: HttpConnection, mask: int, now: float) -> None:
        if mask & selectors.EVENT_WRITE:
            self._dirty.add(conn)
        if not mask & selectors.EVENT_READ or conn.closed:
            return
        try:
            data = conn.sock.recv(READ_SIZE)
        except WOULD_BLOCK:
            return
        except OSError:
            self.close(conn)
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
                    sent = conn.sock.send(conn.out)
                except WOULD_BLOCK:
                    sent = 0
                except OSError:
                    self.close(conn)
                    continue
                self._broker.core.stats.bytes_sent += sent
                del conn.out[:sent]
            if conn.out:
                self._selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                      conn)
            elif conn.closed:
                self.close(conn)
            else:
                self._selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def close(self, conn: HttpConnection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self._dirty.discard(conn)
        self._open[conn.listener] -= 1
        if conn.timer is not None:
            conn.timer.cancel()
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def close_all(self) -> None:
        for conn in list(self.connections):
            self.close(conn)
