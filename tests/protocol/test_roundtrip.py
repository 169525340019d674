"""decode(encode(p)) == p for every packet type at every protocol level, and a packet stream
read back through the incremental reader in random chunk sizes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mqlite.protocol import Connect, Packet, PacketReader, decode, encode

from .strategies import packets


def _wire(packet: Packet, version: int) -> int:
    return packet.protocol_version if isinstance(packet, Connect) else version


@settings(max_examples=400)
@given(st.data())
def test_round_trip_every_packet_type(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from([3, 4, 5]), label="version")
    packet = data.draw(packets(version), label="packet")
    wire = _wire(packet, 4 if version == 3 else version)
    assert decode(encode(packet, wire), wire) == packet


@settings(max_examples=150)
@given(st.data())
def test_stream_in_random_chunks(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from([4, 5]), label="version")
    stream_packets = data.draw(
        st.lists(packets(version).filter(lambda p: not isinstance(p, Connect)), max_size=8)
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
