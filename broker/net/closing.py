"""Closing a connection gracefully (see LINGER_SECONDS): its last packets out, then its
write side shut, and the socket closed once the peer has everything, within the close
timeout."""

from __future__ import annotations

import fcntl
import socket
import termios
import time
from typing import Any, Protocol

from ..config.broker_config import BrokerConfig
from ..engine.connection import Connection
from ..engine.timers import Timer, TimerHeap
from .tls import WOULD_BLOCK

# Closing gracefully. A socket closed with unread input sends a TCP reset, and a reset throws
# away what is still queued for the peer: the last packet (a DISCONNECT with its reason code)
# is lost. So from the moment a connection is closing, what its peer still sends is read and
# discarded while its last packets go out; then the write side is shut, so the peer reads
# them and an end of stream; and the socket is closed once the peer closes too, or after
# LINGER_SECONDS, all within the close timeout.
LINGER_SECONDS = 2.0
# While lingering, how often to look whether the peer has acknowledged every byte we sent, and
# sent nothing more: then closing resets nothing, and need not wait for the peer to close.
LINGER_POLL = 0.02


class Closing:
    """How far a connection's graceful close is (see LINGER_SECONDS)."""

    __slots__ = ("deadline", "lingering", "peer_done", "poll", "timer")

    def __init__(self, deadline: float, timer: Timer) -> None:
        self.deadline = deadline  # the close timeout: closed by then, whatever is unsent
        self.timer = timer  # fires at the deadline, or at the end of the linger
        self.poll: Timer | None = None  # while lingering: the next look at _all_delivered
        self.lingering = False  # output all out and the write side shut
        self.peer_done = False  # the peer closed its side: nothing more to read


def all_delivered(sock: Any) -> bool:
    """Whether the peer has acknowledged every byte sent (our FIN too) and nothing it sent
    waits unread (Linux's SIOCOUTQ and FIONREAD; False where they cannot be asked)."""
    try:
        unacknowledged = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        unread = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, AttributeError):
        return False
    return unacknowledged == unread == b"\0\0\0\0"


class _CloseSocket(Protocol):
    def __call__(self, conn: Connection, reason: str) -> None: ...


class _Watch(Protocol):
    def __call__(self, conn: Connection, *, read: bool, write: bool) -> None: ...


class GracefulClose:
    """The connections closing, for the event loop: it calls ``drain`` as their output is
    flushed and ``discard_input`` when they are readable."""

    def __init__(self, config: BrokerConfig, timers: TimerHeap, buffer: bytearray,
                 close_socket: _CloseSocket, watch: _Watch) -> None:
        self._config = config
        self._timers = timers
        self._buffer = buffer  # the loop's read buffer: what is discarded goes there
        self._close_socket = close_socket
        self._watch = watch
        self._closing: dict[Connection, Closing] = {}  # with how far each is

    def drain(self, conn: Connection) -> None:
        """``conn`` is closing and its output was just flushed (as far as it would go)."""
        closing = self._closing.get(conn)
        if closing is None:
            deadline = time.monotonic() + self._config.close_timeout
            timer = self._timers.call_at(deadline, self._give_up, conn)
            closing = self._closing[conn] = Closing(deadline, timer)
        if conn.out or (conn.websocket is not None and conn.websocket.unsent):
            self._watch(conn, read=not closing.peer_done, write=True)
            return
        if closing.lingering:
            return
        # The last byte is out: shut the write side, so the peer reads an end of stream.
        if closing.peer_done:  # nothing unread can arrive: closing now resets nothing
            self._close_socket(conn, conn.close_reason)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:  # the peer is gone already
            self._close_socket(conn, conn.close_reason)
            return
        self._watch(conn, read=True, write=False)
        closing.lingering = True
        closing.timer.cancel()
        now = time.monotonic()
        closing.timer = self._timers.call_at(min(now + LINGER_SECONDS, closing.deadline),
                                             self._give_up, conn)
        closing.poll = self._timers.call_at(now + LINGER_POLL, self._poll_linger, conn)

    def discard_input(self, conn: Connection) -> None:
        """``conn`` (closing) is readable: what its peer still sends is thrown away."""
        closing = self._closing.get(conn)
        if closing is None:
            return
        try:
            count = conn.sock.recv_into(self._buffer)
        except WOULD_BLOCK:
            return
        except OSError:
            count = 0
        if count:
            return
        if closing.lingering:  # the peer read everything and closed: so do we
            self._close_socket(conn, conn.close_reason)
        else:  # it sends no more; our last packets are still going out
            closing.peer_done = True
            self._watch(conn, read=False, write=True)

    def closed(self, conn: Connection) -> None:
        """``conn``'s socket is closed: its timers go (nothing may keep it alive)."""
        closing = self._closing.pop(conn, None)
        if closing is not None:
            closing.timer.cancel()
            if closing.poll is not None:
                closing.poll.cancel()

    def _poll_linger(self, conn: Connection) -> None:
        closing = self._closing.get(conn)
        if closing is None:
            return
        if all_delivered(conn.sock):
            self._close_socket(conn, conn.close_reason)
        else:
            closing.poll = self._timers.call_at(time.monotonic() + LINGER_POLL,
                                                self._poll_linger, conn)

    def _give_up(self, conn: Connection) -> None:
        """The close timeout (or the linger) is over: close, whatever is left unsent."""
        self._close_socket(conn, conn.close_reason)
