"""Incremental packet reader: feed it byte chunks of any size, iterate over complete packets.

It checks the fixed header (a Remaining Length of at most 4 bytes, the packet size limit) as soon
as the header's bytes are in, before it buffers any of the body, and it only ever holds bytes the
peer has actually sent: a claimed length is compared, never allocated.
"""

from __future__ import annotations

from collections.abc import Iterator

from .decoder import decode_packet
from .errors import MalformedPacket, MQTTError, PacketTooLarge, ProtocolError
from .packet_types import PacketType
from .packets import Connect, Packet
from .topics import DEFAULT_MAX_TOPIC_LEVELS

# The protocol's ceiling: 1 type byte + 4 length bytes + 268,435,455 bytes of body.
PROTOCOL_MAX_PACKET_SIZE = 1 + 4 + 268_435_455

# A server reads no packet only servers send, nor a second CONNECT (spec 3.1.0, 4.8).
_FROM_CLIENT_FORBIDDEN: frozenset[int] = frozenset(
    {PacketType.CONNECT, PacketType.CONNACK, PacketType.SUBACK, PacketType.UNSUBACK,
     PacketType.PINGRESP}
)
_FROM_SERVER_FORBIDDEN: frozenset[int] = frozenset(
    {PacketType.CONNECT, PacketType.SUBSCRIBE, PacketType.UNSUBSCRIBE, PacketType.PINGREQ}
)
_FORBIDDEN = {"server": _FROM_CLIENT_FORBIDDEN, "client": _FROM_SERVER_FORBIDDEN,
              "any": frozenset[int]()}


class PacketReader:
    """Turns a byte stream into packets for one side of one connection.

    ``side="server"`` reads what clients send: the first packet must be CONNECT (checked from its
    first byte), the reader then adopts the CONNECT's protocol level, and a second CONNECT or a
    packet only servers send is a protocol error. ``side="client"`` reads what servers send, at
    ``version``. ``side="any"`` reads packets of either direction at ``version`` (tools, tests).

    Errors are sticky: once ``feed`` has raised, every later call raises the same error.
    """

    __slots__ = ("_buffer", "_chunks", "_closed", "_error", "_need", "_offset", "_pending",
                 "max_packet_size", "max_topic_levels", "side", "version")

    def __init__(
        self,
        side: str = "server",
        *,
        version: int | None = None,
        max_packet_size: int = PROTOCOL_MAX_PACKET_SIZE,
        max_topic_levels: int = DEFAULT_MAX_TOPIC_LEVELS,
    ) -> None:
        if side not in _FORBIDDEN:
            raise ValueError(f"side must be 'server', 'client' or 'any', not {side!r}")
        if side != "server" and version is None:
            raise ValueError(f"a {side!r} reader needs the protocol version to read")
        self.side = side
        # None until the CONNECT arrives, on the server side.
        self.version = version
        self.max_packet_size = max_packet_size
        self.max_topic_levels = max_topic_levels
        # Unparsed bytes are _buffer[_offset:]. While a packet is incomplete, later chunks wait
        # in _chunks until their total (_pending) completes it, so they are joined only once
        # however many chunks a large packet arrives in.
        self._buffer = b""
        self._offset = 0
        self._chunks: list[bytes] | None = None  # a list only while a packet is incomplete
        self._pending = 0
        # How many bytes, counted from _buffer[_offset], the incomplete packet needs at least.
        self._need = 0
        self._error: MQTTError | None = None
        self._closed = False

    @property
    def buffered(self) -> int:
        """How many received bytes wait for the rest of their packet."""
        return len(self._buffer) - self._offset + self._pending

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[Packet]:
        """Take ``data`` and return an iterator over the packets it completes, in order.

        The bytes are copied at once, so the caller may reuse its buffer. Iterate before the
        next ``feed``; packets not yet taken stay buffered. An :class:`MQTTError` is raised at
        the point in the stream where the bad packet starts, after every good packet before it.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ValueError("feed() on a closed PacketReader")
        if data:
            chunk = bytes(data)
            if self._offset:
                self._buffer = self._buffer[self._offset:]
                self._offset = 0
            if self._chunks or len(self._buffer) + len(chunk) < self._need:
                if self._chunks is None:
                    self._chunks = []
                self._chunks.append(chunk)
                self._pending += len(chunk)
                if len(self._buffer) + self._pending >= self._need:
                    self._buffer = b"".join([self._buffer, *self._chunks])
                    self._chunks = None
                    self._pending = 0
            elif self._buffer:
                self._buffer += chunk
            else:
                self._buffer = chunk
        return self._packets()

    def close(self) -> None:
        """Let go of buffered bytes and of a stored error, whose traceback holds the frames
        that fed this reader (and, through them, whoever owns it); ``feed`` then raises
        ``ValueError``."""
        self._closed = True
        self._error = None
        self._buffer = b""
        self._offset = 0
        self._chunks = None
        self._pending = 0

    def _packets(self) -> Iterator[Packet]:
        if self._chunks:
            return
        data = self._buffer
        size = len(data)
        pos = self._offset
        max_size = self.max_packet_size
        forbidden = _FORBIDDEN[self.side]
        try:
            while pos < size:
                first = data[pos]
                if self.version is None:
                    self._check_first_byte(first)
                elif (first >> 4) in forbidden:
                    raise ProtocolError(
                        f"{PacketType(first >> 4).name} may not be sent to a {self.side}"
                    )
                # Remaining Length: at most 4 bytes (spec 2.2.3).
                length = 0
                shift = 0
                index = pos + 1
                while True:
                    if index >= size:
                        self._wait(pos, index + 1 - pos)
                        return
                    byte = data[index]
                    index += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift == 28:
                        raise MalformedPacket("Remaining Length longer than 4 bytes")
                end = index + length
                if end - pos > max_size:
                    raise PacketTooLarge(
                        f"packet of {end - pos} bytes exceeds the maximum of {max_size}"
                    )
                if end > size:
                    self._wait(pos, end - pos)
                    return
                if self.version is None:
                    packet = decode_packet(first, data[index:end], 5, self.max_topic_levels)
                    assert isinstance(packet, Connect)
                    self.version = packet.protocol_version
                else:
                    packet = decode_packet(first, data[index:end], self.version,
                                           self.max_topic_levels)
                pos = end
                self._offset = pos
                yield packet
            self._buffer = b""
            self._offset = 0
            self._need = 0
        except MQTTError as exc:
            self._error = exc
            self._buffer = b""
            self._offset = 0
            raise

    def _check_first_byte(self, first: int) -> None:
        if self.side == "server" and first >> 4 != PacketType.CONNECT:
            raise ProtocolError("the first packet must be CONNECT")

    def _wait(self, pos: int, need: int) -> None:
        """Keep the incomplete packet at ``_buffer[pos:]`` until ``need`` bytes of it are in."""
        self._offset = pos
        self._need = need


def decode(data: bytes, version: int, max_topic_levels: int = DEFAULT_MAX_TOPIC_LEVELS) -> Packet:
    """Decode exactly one complete packet, fixed header included, sent by either side."""
    reader = PacketReader("any", version=version, max_topic_levels=max_topic_levels)
    packets = list(reader.feed(data))
    if len(packets) != 1 or reader.buffered:
        raise MalformedPacket(
            f"expected one complete packet, got {len(packets)} and {reader.buffered} more bytes"
        )
    return packets[0]
