"""A heap of deadlines: the event loop sleeps until the earliest one."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any


class Timer:
    __slots__ = ("args", "callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.deadline = deadline
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerHeap:
    """Cancelled timers stay in the heap until they come up, which keeps cancel O(1)."""

    __slots__ = ("_counter", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(deadline, callback, args)
        heapq.heappush(self._heap, (deadline, next(self._counter), timer))
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if not timer.cancelled:
                timer.cancelled = True
                try:
                    timer.callback(*timer.args)
                except Exception:  # one failing timer must not stop the loop or the others
                    logging.getLogger("mqlite.broker").exception("timer %r failed",
                                                                 timer.callback)
