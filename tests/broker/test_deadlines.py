"""Connection deadlines in quarter-second buckets: checked once, no earlier than due and at
most GRANULARITY late; moved or forgotten connections leave their old bucket at once."""

from __future__ import annotations

from mqlite.broker.engine.connection import Connection
from mqlite.broker.engine.deadlines import GRANULARITY, DeadlineBuckets
from mqlite.broker.engine.stats import Stats
from mqlite.broker.engine.timers import TimerHeap
from mqlite.protocol import PacketReader


def _connection() -> Connection:
    return Connection(None, "peer", PacketReader("server"), set(), 0.0, Stats())


def test_each_connection_is_checked_once_when_due() -> None:
    timers = TimerHeap()
    checked: list[Connection] = []
    deadlines = DeadlineBuckets(timers, checked.append)
    early, late = _connection(), _connection()
    deadlines.watch(early, 10.1)
    deadlines.watch(late, 10.6)
    timers.run_due(10.0)
    assert checked == []
    timers.run_due(10.1 + GRANULARITY)
    assert checked == [early]
    timers.run_due(100.0)
    assert checked == [early, late] and len(deadlines) == 0


def test_moving_a_deadline_leaves_the_old_bucket() -> None:
    timers = TimerHeap()
    checked: list[Connection] = []
    deadlines = DeadlineBuckets(timers, checked.append)
    conn = _connection()
    deadlines.watch(conn, 30.0)
    deadlines.watch(conn, 5.0)  # an earlier keep alive deadline
    assert deadlines.checked_at(conn) == 5.0 and len(deadlines) == 1
    timers.run_due(100.0)
    assert checked == [conn]  # once, not once per bucket it was ever in


def test_a_forgotten_connection_is_held_by_no_bucket() -> None:
    timers = TimerHeap()
    checked: list[Connection] = []
    deadlines = DeadlineBuckets(timers, checked.append)
    conn = _connection()
    deadlines.watch(conn, 60.0)
    assert len(deadlines) == 1
    deadlines.forget(conn)  # its socket closed: nothing may keep it alive until 60 s
    assert len(deadlines) == 0 and deadlines.checked_at(conn) is None
    timers.run_due(100.0)
    assert checked == []


def test_a_check_may_forget_or_move_others_of_its_bucket() -> None:
    """A takeover's check closes another connection of the same bucket: that one is not
    checked, and one the check moved is checked when its new deadline comes."""
    timers = TimerHeap()
    first, closed, moved = _connection(), _connection(), _connection()
    checked: list[Connection] = []

    def check(conn: Connection) -> None:
        checked.append(conn)
        if conn is first:
            deadlines.forget(closed)
            deadlines.watch(moved, 50.0)

    deadlines = DeadlineBuckets(timers, check)
    for conn in (first, closed, moved):
        deadlines.watch(conn, 10.0)
    timers.run_due(10.0 + GRANULARITY)
    assert checked == [first] and deadlines.checked_at(moved) == 50.0
    timers.run_due(100.0)
    assert checked == [first, moved] and len(deadlines) == 0
