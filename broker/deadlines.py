"""Connection deadlines (the connect timeout, 1.5 x keep alive) gathered in quarter-second
buckets, one timer per bucket: a timer of its own cost every connection about 280 bytes (the
timer, its heap entry, a bound method and an argument tuple), a bucket entry a few dozen. A
deadline is acted on at most a quarter of a second late.

A connection is in at most one bucket that counts, the one ``conn.deadline_check`` names;
moving it (an earlier keep alive deadline) or forgetting it (the socket closed) takes it out of
the old bucket at once, so nothing keeps a closed connection alive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from .connection import Connection
from .timers import TimerHeap

GRANULARITY = 0.25  # seconds

log = logging.getLogger("mqlite.broker")


class DeadlineBuckets:
    __slots__ = ("_buckets", "_check", "_timers")

    def __init__(self, timers: TimerHeap, check: Callable[[Connection], None]) -> None:
        self._timers = timers
        self._check = check  # called with each connection whose bucket came up
        self._buckets: dict[int, dict[Connection, None]] = {}

    def watch(self, conn: Connection, deadline: float) -> None:
        """Check ``conn`` at ``deadline`` (within GRANULARITY after it), instead of when it
        was to be checked before."""
        self.forget(conn)
        key = math.ceil(deadline / GRANULARITY)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = {}
            self._timers.call_at(key * GRANULARITY, self._run, key)
        bucket[conn] = None
        conn.deadline_check = key

    def checked_at(self, conn: Connection) -> float | None:
        """When ``conn`` is to be checked next, if it is."""
        key = conn.deadline_check
        return None if key is None else key * GRANULARITY

    def forget(self, conn: Connection) -> None:
        key = conn.deadline_check
        if key is not None:
            conn.deadline_check = None
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.pop(conn, None)

    def _run(self, key: int) -> None:
        for conn in self._buckets.pop(key, {}):
            conn.deadline_check = None
            try:
                self._check(conn)
            except Exception:  # one failing check must not skip the rest of the bucket
                log.exception("checking the deadline of the connection from %s failed",
                              conn.peer)

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())
