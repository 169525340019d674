"""Arbitrary bytes into the reader give packets or the core's own errors, never anything else."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlite.protocol import MQTTError, PacketReader, encode

from .vectors import VECTORS


def _drain(reader: PacketReader, chunks: list[bytes]) -> None:
    try:
        for chunk in chunks:
            for _ in reader.feed(chunk):
                pass
    except MQTTError:
        pass  # the only exceptions allowed


@settings(max_examples=600)
@given(
    side=st.sampled_from(["server", "client", "any"]),
    version=st.sampled_from([3, 4, 5]),
    chunks=st.lists(st.binary(max_size=64), max_size=6),
)
def test_arbitrary_bytes(side: str, version: int, chunks: list[bytes]) -> None:
    reader = PacketReader(side, version=None if side == "server" else version)
    _drain(reader, chunks)


@settings(max_examples=400)
@given(st.data())
def test_arbitrary_bodies_after_a_valid_fixed_header(data: st.DataObject) -> None:
    """Random bodies behind every packet type's valid first byte reach deep into the decoders."""
    version = data.draw(st.sampled_from([4, 5]))
    first = data.draw(st.sampled_from(
        [0x10, 0x20, 0x30, 0x32, 0x34, 0x3B, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0,
         0xC0, 0xD0, 0xE0, 0xF0]
    ))
    body = data.draw(st.binary(max_size=80))
    length = len(body)
    header = bytes([first]) + bytes(
        [(length & 0x7F) | 0x80, length >> 7] if length > 127 else [length]
    )
    _drain(PacketReader("any", version=version), [header + body])


@pytest.mark.parametrize("seed", range(4))
def test_mutated_golden_vectors(seed: int) -> None:
    """Flip, insert and delete bytes of valid packets: 4 x 5,000 mutants."""
    rng = random.Random(seed)
    for _ in range(5_000):
        vector = rng.choice(VECTORS)
        data = bytearray(vector.data)
        for _ in range(rng.randint(1, 3)):
            where = rng.randrange(len(data) + 1)
            action = rng.random()
            if action < 0.5 and where < len(data):
                data[where] = rng.randrange(256)
            elif action < 0.8:
                data.insert(where, rng.randrange(256))
            elif where < len(data):
                del data[where]
        side = rng.choice(["server", "any"])
        reader = PacketReader(side, version=None if side == "server" else max(4, vector.version))
        _drain(reader, [bytes(data)])


def test_round_tripped_packets_survive_mutation_of_encoding() -> None:
    """Mutating encoder output, not just the hand vectors."""
    rng = random.Random(99)
    encoded = [encode(v.packet, max(4, v.version)) for v in VECTORS]
    for _ in range(5_000):
        data = bytearray(rng.choice(encoded))
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        _drain(PacketReader("any", version=rng.choice([4, 5])), [bytes(data)])
