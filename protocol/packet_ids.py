"""Packet identifier allocation for one session and one direction (spec 2.2.1), shared by the
broker and the client."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .errors import PacketIdsExhausted

MAX_PACKET_ID = 0xFFFF


def next_free_id(in_use: Collection[int], start: int) -> int:
    """The first identifier at or after ``start`` that ``in_use`` does not hold, cycling through
    1..65535 (so that a just-released id is not reused at once; the caller starts the next
    search after the one returned). ``in_use`` is whatever already holds the ids in use, e.g.
    a session's in-flight deliveries by id, so no second copy of them is kept.
    Raises :class:`PacketIdsExhausted` when all 65,535 are in use."""
    if len(in_use) >= MAX_PACKET_ID:
        raise PacketIdsExhausted("all 65,535 packet identifiers are in flight")
    candidate = start
    while candidate in in_use:
        candidate = candidate % MAX_PACKET_ID + 1
    return candidate


class PacketIdAllocator:
    """The ids in use as a set of its own, for a side whose ids are held by several kinds of
    flow (the client's PUBLISH, SUBSCRIBE and UNSUBSCRIBE share them)."""

    __slots__ = ("_in_use", "_next")

    def __init__(self, in_use: Iterable[int] = ()) -> None:
        self._in_use: set[int] = set()
        self._next = 1
        for packet_id in in_use:
            self.reserve(packet_id)

    def __len__(self) -> int:
        return len(self._in_use)

    def __contains__(self, packet_id: object) -> bool:
        return packet_id in self._in_use

    def allocate(self) -> int:
        candidate = next_free_id(self._in_use, self._next)
        self._in_use.add(candidate)
        self._next = candidate % MAX_PACKET_ID + 1
        return candidate

    def reserve(self, packet_id: int) -> None:
        """Mark an id restored from storage as in flight."""
        if not 1 <= packet_id <= MAX_PACKET_ID:
            raise ValueError(f"packet identifier must be 1..65535, not {packet_id}")
        self._in_use.add(packet_id)

    def release(self, packet_id: int) -> bool:
        """Free an id once its flow completes; False if it was not in flight."""
        if packet_id in self._in_use:
            self._in_use.remove(packet_id)
            return True
        return False
