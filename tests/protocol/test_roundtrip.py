"""decode(encode(p)) == p for every packet type at every protocol level, and a packet stream
read back through the incremental reader in random chunk sizes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlite.protocol import Connect, Packet, PacketReader, decode, encode

from .strategies import packet_strategies


def _wire(packet: Packet, version: int) -> int:
    return packet.protocol_version if isinstance(packet, Connect) else version


CASES = [(version, name) for version in (3, 4, 5) for name in packet_strategies(version)]


@pytest.mark.parametrize("version,packet_name", CASES, ids=[f"v{v}-{n}" for v, n in CASES])
def test_round_trip(version: int, packet_name: str) -> None:
    """decode(encode(p)) == p for every packet type at every protocol level."""
    wire = 4 if version == 3 else version

    @settings(max_examples=60)
    @given(packet_strategies(version)[packet_name])
    def check(packet: Packet) -> None:
        level = _wire(packet, wire)
        assert decode(encode(packet, level), level) == packet

    check()


@settings(max_examples=150)
@given(st.data())
def test_stream_in_random_chunks(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from([4, 5]), label="version")
    stream_packets = data.draw(
        st.lists(st.one_of([strategy for kind, strategy in packet_strategies(version).items()
                            if kind != "CONNECT"]), max_size=8)  # drawn, not filtered out
    )
    stream = b"".join(encode(p, version) for p in stream_packets)
    reader = PacketReader("any", version=version)
    received: list[Packet] = []
    pos = 0
    while pos < len(stream):
        size = data.draw(st.integers(1, 64), label="chunk")
        received.extend(reader.feed(stream[pos : pos + size]))
        pos += size
    assert received == stream_packets
    assert reader.buffered == 0
