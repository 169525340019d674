"""Golden vectors: encode to the exact bytes, decode whole, byte by byte, and followed by more."""

from __future__ import annotations

import pytest

from mqlite.protocol import PacketReader, decode, encode

from .vectors import VECTORS, Vector

ids = [v.name for v in VECTORS]


@pytest.mark.parametrize("vector", VECTORS, ids=ids)
def test_encode_gives_golden_bytes(vector: Vector) -> None:
    assert encode(vector.packet, vector.version).hex() == vector.data.hex()


@pytest.mark.parametrize("vector", VECTORS, ids=ids)
def test_decode_whole(vector: Vector) -> None:
    assert decode(vector.data, vector.version) == vector.packet


@pytest.mark.parametrize("vector", VECTORS, ids=ids)
def test_decode_byte_by_byte(vector: Vector) -> None:
    reader = PacketReader("any", version=vector.version)
    packets = []
    for index in range(len(vector.data)):
        packets.extend(reader.feed(vector.data[index : index + 1]))
        if index < len(vector.data) - 1:
            assert packets == [], "a packet came out before its last byte"
    assert packets == [vector.packet]
    assert reader.buffered == 0


@pytest.mark.parametrize("vector", VECTORS, ids=ids)
def test_decode_followed_by_next_packet(vector: Vector) -> None:
    # MQTT 3.1 packets after CONNECT are laid out as in 3.1.1.
    wire = 4 if vector.version == 3 else vector.version
    following = next(v for v in VECTORS[VECTORS.index(vector) + 1 :] + VECTORS
                     if v.version == wire and v is not vector)
    reader = PacketReader("any", version=vector.version)
    assert list(reader.feed(vector.data + following.data)) == [vector.packet, following.packet]


@pytest.mark.parametrize("vector", VECTORS, ids=ids)
def test_decode_with_trailing_partial_packet(vector: Vector) -> None:
    """The bytes after a packet, short of a whole packet, wait in the reader."""
    reader = PacketReader("any", version=vector.version)
    assert list(reader.feed(vector.data + vector.data[:1])) == [vector.packet]
    assert reader.buffered == 1
    assert list(reader.feed(vector.data[1:])) == [vector.packet]
