"""The broker's time. What the protocol times (keep alive and the connect timeout, session
expiry, will delays, message and retained message expiry, $SYS updates) is read from one
:class:`Clock`, which a test may stop and move ahead (``mqlite.testing``: a will delay of 90 s
passes in one call). What the machine times (flushing and closing sockets, flow control, retries
and anti-abuse delays, the store's commit batching, turn durations and uptime) reads the system's
clocks, and runs on the core's ``system_timers``."""

from __future__ import annotations

import time


class Clock:
    """The system's clocks."""

    def monotonic(self) -> float:
        """For deadlines and durations: never goes back."""
        return time.monotonic()

    def time(self) -> float:
        """Wall-clock seconds since the epoch, for what is stored and shown."""
        return time.time()


class ManualClock(Clock):
    """A clock that stands still until :meth:`advance` moves it (from the system's time when
    it was made)."""

    def __init__(self) -> None:
        self._monotonic = time.monotonic()
        self._wall = time.time()

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move ``seconds`` ahead (never back). The event loop notices at its next turn: wake it
        (``Broker.call_soon``) to have what fell due run."""
        if seconds < 0:
            raise ValueError("a clock only moves ahead")
        self._monotonic += seconds
        self._wall += seconds
