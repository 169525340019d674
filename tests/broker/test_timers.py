"""The timer heap: a cancelled timer holds nothing, and cancelled timers do not pile up."""

from __future__ import annotations

import weakref

from mqlite.broker.engine.timers import TimerHeap


class Target:
    def fire(self) -> None:
        raise AssertionError("a cancelled timer ran")


def test_cancelled_timer_lets_go_of_its_arguments() -> None:
    heap = TimerHeap()
    target = Target()
    alive = weakref.ref(target)
    ran: list[bool] = []
    timer = heap.call_at(1e9, target.fire)
    heap.call_at(1e9, lambda held: ran.append(held is not None), target)
    del target
    timer.cancel()
    assert alive() is not None  # the second timer still holds it
    heap.run_due(2e9)  # it runs, and is let go of once it has
    assert ran == [True]
    assert alive() is None


def test_cancelled_timers_are_swept() -> None:
    heap = TimerHeap()
    timers = [heap.call_at(1e9 + i, print) for i in range(10_000)]
    for timer in timers[:9_000]:
        timer.cancel()
    assert len(heap) <= 2 * 1_000 + 64
    assert heap.next_deadline() == 1e9 + 9_000
    ran: list[int] = []
    heap.call_at(0.0, ran.append, 1)
    heap.run_due(1.0)
    assert ran == [1]
