"""Closing a connection gracefully: the constants and the state of one close (see
LINGER_SECONDS), for the event loop."""

from __future__ import annotations

import fcntl
import termios
from typing import Any

from .timers import Timer

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
