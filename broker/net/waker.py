"""Callbacks for the event loop's thread from anywhere else (a worker thread, a signal
handler): queued here, and the loop's ``select`` interrupted through a socket pair. Made
before the broker's parts, so that each is built with ``call_soon`` (never given it later)."""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from collections.abc import Callable


class Waker:
    def __init__(self) -> None:
        self.read_end, self._write_end = socket.socketpair()
        self.read_end.setblocking(False)
        self._write_end.setblocking(False)
        # The callbacks, in order (the loop pops them, at each turn's start).
        self.soon: deque[Callable[[], None]] = deque()

    def wake(self) -> None:
        """Interrupt the loop's ``select``."""
        with contextlib.suppress(OSError):
            self._write_end.send(b"\0")

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop's thread at the start of its next turn; safe from any
        thread and from a signal handler (it only appends and wakes)."""
        self.soon.append(callback)
        self.wake()

    def woken(self) -> None:
        """The read end was readable: what woke the loop is read away."""
        with contextlib.suppress(OSError):
            self.read_end.recv(4096)

    def close(self) -> None:
        self.read_end.close()
        self._write_end.close()
