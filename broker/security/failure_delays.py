"""Slowing down password guessing: each failed authentication from an address makes the next
refusal to that address wait longer (doubling, capped), so passwords cannot be tried at loop
speed. The wait holds only that connection's CONNACK, on a timer: the loop goes on serving
everyone else. A success from the address forgets its failures."""

from __future__ import annotations

FIRST_DELAY = 0.5  # seconds, for the second failure in a row (the first is answered at once)
MAX_DELAY = 10.0
FORGET_AFTER = 600.0  # an address without failures for this long starts afresh
MAX_ADDRESSES = 10_000  # a bound on the memory a flood of addresses can take


class FailureDelays:
    __slots__ = ("_failures",)

    def __init__(self) -> None:
        # address -> (failures in a row, monotonic time of the last one)
        self._failures: dict[str, tuple[int, float]] = {}

    def failed(self, address: str, now: float) -> float:
        """Record a failure; the seconds to hold its refusal."""
        count, last = self._failures.get(address, (0, now))
        if now - last > FORGET_AFTER:
            count = 0
        if len(self._failures) >= MAX_ADDRESSES and address not in self._failures:
            self._failures.clear()  # crude, but bounded; the cap is far above normal use
        count += 1
        self._failures[address] = (count, now)
        return 0.0 if count == 1 else min(MAX_DELAY, FIRST_DELAY * 2 ** (count - 2))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


def host_of(peer: str) -> str:
    """The address part of "host:port" (or of "unix:path", all of it)."""
    if peer.startswith("unix:"):
        return peer
    return peer.rsplit(":", 1)[0]
