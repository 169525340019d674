"""MQTT's primitive data types (spec 1.5): integers, UTF-8 strings, binary data, variable byte
integers. Decoders take a complete packet body and an offset, and return the value and the next
offset; running past the end of the body is a :class:`MalformedPacket`.
"""

from __future__ import annotations

from struct import Struct

from .errors import MalformedPacket

MAX_VBI = 268_435_455  # the largest value four variable-byte-integer bytes can hold
MAX_UINT16 = 0xFFFF
MAX_UINT32 = 0xFFFF_FFFF

U16 = Struct(">H")
U32 = Struct(">I")


def _encode_vbi_slow(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# Most remaining lengths on the hot path are small; precompute their encodings.
_VBI_CACHE = [_encode_vbi_slow(n) for n in range(16384)]


def encode_vbi(value: int) -> bytes:
    """Encode a variable byte integer in the fewest bytes (spec 1.5.5)."""
    if value < 16384:
        if value < 0:
            raise ValueError(f"variable byte integer out of range: {value}")
        return _VBI_CACHE[value]
    if value > MAX_VBI:
        raise ValueError(f"variable byte integer out of range: {value}")
    return _encode_vbi_slow(value)


def decode_vbi(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a variable byte integer at ``pos``; at most 4 bytes, fewest bytes only."""
    value = 0
    shift = 0
    for count in range(4):
        if pos >= len(data):
            raise MalformedPacket("variable byte integer runs past the end of the packet")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and count:
                raise MalformedPacket("variable byte integer not in its shortest form")
            return value, pos
        shift += 7
    raise MalformedPacket("variable byte integer longer than 4 bytes")


def read_u8(data: bytes, pos: int) -> int:
    if pos >= len(data):
        raise MalformedPacket("byte field runs past the end of the packet")
    return data[pos]


def read_u16(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise MalformedPacket("two-byte integer runs past the end of the packet")
    return int(U16.unpack_from(data, pos)[0])


def read_u32(data: bytes, pos: int) -> int:
    if pos + 4 > len(data):
        raise MalformedPacket("four-byte integer runs past the end of the packet")
    return int(U32.unpack_from(data, pos)[0])


def read_binary(data: bytes, pos: int) -> tuple[bytes, int]:
    """Binary data: a two-byte length, then that many bytes (spec 1.5.6)."""
    length = read_u16(data, pos)
    pos += 2
    end = pos + length
    if end > len(data):
        raise MalformedPacket("length prefix runs past the end of the packet")
    return data[pos:end], end


def decode_utf8(raw: bytes) -> str:
    """Strict UTF-8 (no surrogates, no overlong forms) without U+0000 (spec 1.5.4)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"ill-formed UTF-8 string: {exc.reason}") from None
    if "\x00" in text:
        raise MalformedPacket("UTF-8 string contains U+0000")
    return text


def read_string(data: bytes, pos: int) -> tuple[str, int]:
    """A UTF-8 encoded string: a two-byte length, then well-formed UTF-8 (spec 1.5.4)."""
    raw, pos = read_binary(data, pos)
    return decode_utf8(raw), pos


def encode_binary(value: bytes) -> bytes:
    if len(value) > MAX_UINT16:
        raise ValueError(f"binary field longer than 65,535 bytes: {len(value)}")
    return U16.pack(len(value)) + value


def encode_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_UINT16:
        raise ValueError(f"string longer than 65,535 bytes when encoded: {len(raw)}")
    return U16.pack(len(raw)) + raw
