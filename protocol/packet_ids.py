"""Packet identifier allocation for one session and one direction (spec 2.2.1)."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import PacketIdsExhausted

MAX_PACKET_ID = 0xFFFF


class PacketIdAllocator:
    """Hands out identifiers 1..65535 not currently in flight, cycling so that a just-released
    id is not reused at once. Raises :class:`PacketIdsExhausted` when all 65,535 are in use."""

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
        in_use = self._in_use
        if len(in_use) >= MAX_PACKET_ID:
            raise PacketIdsExhausted("all 65,535 packet identifiers are in flight")
        candidate = self._next
        while candidate in in_use:
            candidate = candidate + 1 if candidate < MAX_PACKET_ID else 1
        in_use.add(candidate)
        self._next = candidate + 1 if candidate < MAX_PACKET_ID else 1
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
