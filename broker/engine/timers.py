"""A heap of deadlines: the event loop sleeps until the earliest one."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

# Cancelled timers are swept from the heap once there are this many and they are at least
# half of it (so a sweep's cost is paid for by the cancels before it).
_SWEEP_AT = 64


def _nothing() -> None:
    pass


class Timer:
    __slots__ = ("_heap", "args", "callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[..., Any], args: tuple[Any, ...],
                 heap: TimerHeap) -> None:
        self.deadline = deadline
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._heap: TimerHeap | None = heap

    def cancel(self) -> None:
        """Never run; and let go of the callback and its arguments at once: a cancelled timer
        waits in the heap until its deadline, and must not keep a closed connection alive
        until then."""
        if self.cancelled:
            return
        self.cancelled = True
        self.callback = _nothing
        self.args = ()
        heap, self._heap = self._heap, None
        if heap is not None:
            heap.cancelled_one()


class TimerHeap:
    """Cancelled timers stay in the heap until they come up or are swept, which keeps cancel
    O(1) and the heap no larger than twice its live timers (past a small floor)."""

    __slots__ = ("_cancelled", "_counter", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        self._cancelled = 0  # cancelled timers still in the heap

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(deadline, callback, args, self)
        heapq.heappush(self._heap, (deadline, next(self._counter), timer))
        return timer

    def cancelled_one(self) -> None:
        self._cancelled += 1
        if self._cancelled >= _SWEEP_AT and 2 * self._cancelled >= len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def run_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                self._cancelled -= 1
                continue
            timer.cancelled = True  # it ran: a later cancel() is a no-op
            timer._heap = None
            callback, args = timer.callback, timer.args
            timer.callback, timer.args = _nothing, ()  # hold nothing once it has run
            try:
                callback(*args)
            except Exception:  # one failing timer must not stop the loop or the others
                logging.getLogger("mqlite.broker").exception("timer %r failed", callback)
            heap = self._heap  # a callback's cancel may have swept the heap into a new list
