"""Packet identifier allocation (spec 2.2.1, [MQTT-2.3.1-4])."""

from __future__ import annotations

import pytest

from mqlite.protocol import PacketIdAllocator, PacketIdsExhausted


def test_skips_in_flight_ids_and_wraps() -> None:
    ids = PacketIdAllocator(in_use=[2, 3])
    assert ids.allocate() == 1
    assert ids.allocate() == 4
    ids.release(1)
    assert ids.allocate() == 5  # a just-released id is not reused at once
    assert 1 not in ids and 4 in ids and 5 in ids and 6 not in ids


def test_exhaustion_raises_and_release_recovers() -> None:
    ids = PacketIdAllocator()
    allocated = {ids.allocate() for _ in range(65_535)}
    assert allocated == set(range(1, 65_536))
    with pytest.raises(PacketIdsExhausted):
        ids.allocate()
    assert ids.release(40_000) is True
    assert ids.allocate() == 40_000
    assert ids.release(0) is False


def test_reserve_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        PacketIdAllocator(in_use=[0])
    with pytest.raises(ValueError):
        PacketIdAllocator().reserve(65_536)
