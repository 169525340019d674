"""Connection deadlines (the connect timeout, 1.5 x keep alive) gathered in quarter-second
buckets, one timer per bucket: a timer of its own cost every connection about 280 bytes (the
timer, its heap entry, a bound method and an argument tuple), a bucket entry a few dozen. A
deadline is acted on at most a quarter of a second late.

A connection is in at most one bucket that counts, the one ``conn.deadline_check`` holds (the
bucket itself: an int key of its own would cost every connection 32 bytes more); moving it (an
earlier keep alive deadline) or forgetting it (the socket closed) takes it out of that bucket
at once, so nothing keeps a closed connection alive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from .connection import Connection
from .timers import TimerHeap

GRANULARITY = 0.25  # seconds

log = logging.getLogger("mqlite.broker")


class Bucket(dict[Connection, None]):
    """The connections to check at ``key`` x GRANULARITY (a dict: ordered, O(1) removal)."""

    __slots__ = ("key",)

    def __init__(self, key: int) -> None:
        super().__init__()
        self.key = key


class DeadlineBuckets:
    __slots__ = ("_buckets", "_check", "_timers")

    def __init__(self, timers: TimerHeap, check: Callable[[Connection], None]) -> None:
        self._timers = timers
        self._check = check  # called with each connection whose bucket came up
        self._buckets: dict[int, Bucket] = {}

    def watch(self, conn: Connection, deadline: float) -> None:
        """Check ``conn`` at ``deadline`` (within GRANULARITY after it), instead of when it
        was to be checked before."""
        self.forget(conn)
        key = math.ceil(deadline / GRANULARITY)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(key)
            self._timers.call_at(key * GRANULARITY, self._run, key)
        bucket[conn] = None
        conn.deadline_check = bucket

    def checked_at(self, conn: Connection) -> float | None:
        """When ``conn`` is to be checked next, if it is."""
        bucket = conn.deadline_check
        if bucket is None:
            return None
        assert isinstance(bucket, Bucket)
        return bucket.key * GRANULARITY

    def forget(self, conn: Connection) -> None:
        bucket = conn.deadline_check
        if bucket is not None:
            conn.deadline_check = None
            bucket.pop(conn, None)

    def _run(self, key: int) -> None:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            return
        # A check may forget or move others of this bucket (a takeover closes the old
        # connection): those are no longer in it, or no longer point at it.
        for conn in list(bucket):
            if conn.deadline_check is not bucket:
                continue
            conn.deadline_check = None
            try:
                self._check(conn)
            except Exception:  # one failing check must not skip the rest of the bucket
                log.exception("checking the deadline of the connection from %s failed",
                              conn.peer)

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())
