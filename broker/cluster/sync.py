"""A blocking Redis connection for the cluster's session store: one pipelined round trip per
call, with a timeout, as the SQLite store's commit is one synchronous step of the loop's turn.

The store's writes must be answered before the turn's packets leave (an acknowledgement
follows its storage), so waiting here is what the turn would do anyway; on a unix socket or
the loopback a round trip costs tens of microseconds, far less than an fsync.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import hiredis

from .config import RedisAddress


class RedisUnavailable(Exception):
    """The connection failed or timed out: what was sent may or may not have been applied."""


class RedisSync:
    def __init__(self, address: RedisAddress, timeout: float, setup: list[tuple[Any, ...]],
                 ) -> None:
        """``setup``: commands sent on every new connection (SCRIPT LOAD, say), after AUTH and
        SELECT."""
        self.address = address
        self.timeout = timeout
        self._setup = setup
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()

    def call(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` in one write and return their replies (a command's error comes
        back as a ``hiredis.ReplyError`` in its place); RedisUnavailable if the connection
        fails."""
        try:
            if self._sock is not None and self._closed_while_idle(self._sock):
                self.close()  # Redis restarted, say: nothing was sent on it, so go on anew
            if self._sock is None:
                self._connect()
            return self._round_trip(commands)
        except (OSError, hiredis.ProtocolError) as exc:
            self.close()
            raise RedisUnavailable(f"Redis at {self.address}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._reader = hiredis.Reader()

    def _closed_while_idle(self, sock: socket.socket) -> bool:
        """Whether the server closed the connection since the last call (it is readable at
        end of file, or reset)."""
        if isinstance(sock, ssl.SSLSocket):
            return False  # no peeking under TLS: a failure of the call itself tells
        sock.setblocking(False)  # a timeout would make the peek wait for data
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(self.timeout)

    def _connect(self) -> None:
        address = self.address
        sock: socket.socket
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(address.path)
        else:
            sock = socket.create_connection((address.host, address.port), self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if address.tls:
                context = ssl.create_default_context(cafile=address.ca_file)
                sock = context.wrap_socket(sock, server_hostname=address.host)
        sock.settimeout(self.timeout)
        self._sock = sock
        setup: list[tuple[Any, ...]] = []
        if address.password is not None:
            setup.append(("AUTH", address.username, address.password) if address.username
                         else ("AUTH", address.password))
        if address.db:
            setup.append(("SELECT", address.db))
        for reply in self._round_trip((*setup, *self._setup)):
            if isinstance(reply, hiredis.ReplyError):
                # AUTH's error says nothing of the password; it is never part of the message.
                raise OSError(f"connection set-up refused: {reply}")

    def _round_trip(self, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        sock = self._sock
        assert sock is not None
        if not commands:
            return []
        sock.sendall(b"".join(hiredis.pack_command(command) for command in commands))
        replies: list[Any] = []
        reader = self._reader
        while len(replies) < len(commands):
            reply = reader.gets()
            if reply is False:
                data = sock.recv(1 << 18)
                if not data:
                    raise OSError("Redis closed the connection")
                reader.feed(data)
                continue
            replies.append(reply)
        return replies
