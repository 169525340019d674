"""User properties by the hundred thousand (issue: 40,000 of them cost the broker 4.4 s of
CPU, quadratic in their number). Speed is measured by ``python -m bench.properties``; these
tests check the decoded result, the bad-input paths of the fast loop, and that a packet full of
properties is not quadratic (a CPU limit 100 times what the linear decoder needs, a tenth of
what the quadratic one took)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mqlite.protocol import MalformedPacket, PacketReader, Properties, Publish, decode, encode
from mqlite.protocol.wire import encode_string, encode_vbi


def _publish_with_raw_properties(raw: bytes) -> bytes:
    body = encode_string("t") + encode_vbi(len(raw)) + raw + b"payload"
    return b"\x30" + encode_vbi(len(body)) + body


def test_100000_user_properties_decode_in_order() -> None:
    pairs = tuple((f"key-{i}", f"välue-{i % 7}") for i in range(100_000))
    packet = Publish(topic="t", payload=b"x", properties=Properties(
        user_property=pairs, content_type="text/plain", message_expiry_interval=60))
    reader = PacketReader("client", version=5)
    [decoded] = list(reader.feed(encode(packet, 5)))
    assert decoded == packet
    assert decoded.properties.user_property == pairs


def test_user_properties_among_other_properties() -> None:
    raw = (b"\x26" + encode_string("a") + encode_string("1") + b"\x02\x00\x00\x00\x0a"
           + b"\x26" + encode_string("") + encode_string("") + b"\x0b\x05"
           + b"\x26" + encode_string("a") + encode_string("2"))
    packet = decode(_publish_with_raw_properties(raw), 5)
    assert isinstance(packet, Publish)
    assert packet.properties.user_property == (("a", "1"), ("", ""), ("a", "2"))
    assert packet.properties.message_expiry_interval == 10
    assert packet.properties.subscription_identifier == (5,)


@pytest.mark.parametrize("raw", [
    b"\x26\x00",  # key length cut short
    b"\x26" + encode_string("k"),  # no value at all
    b"\x26" + encode_string("k") + b"\x00",  # value length cut short
    b"\x26" + encode_string("k") + b"\x00\x05ab",  # value runs past the block
    b"\x26\x00\x09k" + encode_string("v"),  # key runs past the block
    b"\x26" + encode_string("k") + encode_string("v") + b"\x26" + encode_string("k"),
], ids=["key-length", "no-value", "value-length", "value-past-end", "key-past-end",
        "second-truncated"])
def test_truncated_user_property_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPacket, match="truncated"):
        decode(_publish_with_raw_properties(raw), 5)


@pytest.mark.parametrize("key,value", [(b"a\x00", b"v"), (b"k", b"\x00"), (b"\xc0\xaf", b"v"),
                                       (b"k", b"\xed\xa0\x80")],
                         ids=["nul-key", "nul-value", "overlong-key", "surrogate-value"])
def test_bad_utf8_in_user_property_is_malformed(key: bytes, value: bytes) -> None:
    raw = b"\x26" + len(key).to_bytes(2, "big") + key + len(value).to_bytes(2, "big") + value
    with pytest.raises(MalformedPacket, match="UTF-8"):
        decode(_publish_with_raw_properties(raw), 5)


def test_many_user_properties_are_not_quadratic() -> None:
    """100,000 user properties under a 10 s CPU limit: the linear decoder needs about 0.1 s
    here, the quadratic one needed about 90 s."""
    program = textwrap.dedent("""
        import resource
        from mqlite.protocol import Properties, Publish, decode, encode
        pairs = tuple((f"k{i}", "v") for i in range(100_000))
        data = encode(Publish(topic="t", properties=Properties(user_property=pairs)), 5)
        resource.setrlimit(resource.RLIMIT_CPU, (10, 10))
        assert decode(data, 5).properties.user_property == pairs
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
