"""The incremental reader's contract beyond single packets."""

from __future__ import annotations

import pytest

from mqlite.protocol import (
    Connack,
    Connect,
    MalformedPacket,
    PacketReader,
    Pingreq,
    Pingresp,
    ProtocolError,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    encode,
)

CONNECT_V5 = encode(Connect(client_id="c", protocol_version=5), 5)
CONNECT_V311 = encode(Connect(client_id="c", protocol_version=4), 4)


def test_server_reader_adopts_the_connect_protocol_level_for_pipelined_packets() -> None:
    """Spec checklist 17: packets right behind CONNECT, in the same chunk, use its version."""
    publish = Publish(topic="t", payload=b"x", qos=1, packet_id=1)
    reader = PacketReader("server")
    packets = list(reader.feed(CONNECT_V5 + encode(publish, 5)))
    assert packets[1] == publish
    assert reader.version == 5


@pytest.mark.parametrize("packet", [Connect(client_id="again"), Connack(), Pingresp(),
                                    Suback(packet_id=1, reason_codes=[0])])
def test_server_reader_rejects_second_connect_and_server_only_packets(packet: object) -> None:
    """[MQTT-3.1.0-2] and spec 4.8: a second CONNECT or a server-only packet closes."""
    reader = PacketReader("server")
    assert len(list(reader.feed(CONNECT_V311))) == 1
    with pytest.raises(ProtocolError):
        list(reader.feed(encode(packet, 4)))  # type: ignore[arg-type]


@pytest.mark.parametrize("packet", [Connect(client_id="c"), Pingreq(),
                                    Subscribe(packet_id=1, subscriptions=[
                                        Subscription(topic_filter="t")])])
def test_client_reader_rejects_client_only_packets(packet: object) -> None:
    reader = PacketReader("client", version=4)
    with pytest.raises(ProtocolError):
        list(reader.feed(encode(packet, 4)))  # type: ignore[arg-type]


def test_good_packets_before_an_error_are_delivered_then_the_error_is_sticky() -> None:
    reader = PacketReader("any", version=4)
    good = encode(Publish(topic="a"), 4)
    received = []
    with pytest.raises(MalformedPacket):
        for packet in reader.feed(good + good + bytes.fromhex("3605000161 0001".replace(" ", ""))):
            received.append(packet)
    assert received == [Publish(topic="a"), Publish(topic="a")]
    with pytest.raises(MalformedPacket):
        list(reader.feed(good))


def test_feed_copies_so_the_caller_may_reuse_its_buffer() -> None:
    data = bytearray(encode(Publish(topic="abc", payload=b"0123456789"), 4))
    reader = PacketReader("any", version=4)
    view = memoryview(data)
    assert list(reader.feed(view[:5])) == []
    data[:5] = b"\xff" * 5  # the caller's buffer is overwritten by its next recv_into
    original = encode(Publish(topic="abc", payload=b"0123456789"), 4)
    assert list(reader.feed(original[5:])) == [Publish(topic="abc", payload=b"0123456789")]


def test_packets_not_taken_stay_buffered() -> None:
    reader = PacketReader("any", version=4)
    data = b"".join(encode(Publish(topic=f"t{i}"), 4) for i in range(3))
    iterator = reader.feed(data)
    assert next(iterator) == Publish(topic="t0")
    del iterator
    assert [p.topic for p in reader.feed(b"")] == ["t1", "t2"]  # type: ignore[union-attr]


def test_large_packet_in_many_small_chunks() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = encode(Publish(topic="big", payload=payload), 4)
    reader = PacketReader("any", version=4)
    received = []
    for start in range(0, len(data), 1000):
        received.extend(reader.feed(data[start : start + 1000]))
        if start + 1000 < len(data):
            assert reader.buffered == start + 1000
    assert received == [Publish(topic="big", payload=payload)]
    assert reader.buffered == 0


def test_client_and_any_readers_need_a_version() -> None:
    with pytest.raises(ValueError):
        PacketReader("client")
    with pytest.raises(ValueError):
        PacketReader("broker", version=4)
