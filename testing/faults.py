"""Faults on the wire: the test broker's accepted sockets, which do what a network or a broker
in trouble would when a test asks. Everything here works on bytes between the broker and the
kernel, so the broker itself runs exactly as in production.

- *withheld* packet types (PUBACK, PUBREC, PUBCOMP, SUBACK, ...) towards a client are kept back
  from its socket, and sent late or never;
- a *silent* socket passes nothing either way and stays open (a dead network path);
- a CONNECT may be *refused* with a chosen reason code before the broker sees it.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from typing import TYPE_CHECKING

from mqlite.protocol import Connack, Connect, MQTTError, PacketReader, ReasonCode, encode
from mqlite.protocol.reason_codes import ConnackReturnCode

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

# Packet type numbers (the high nibble of the first byte), by the names tests use.
PACKET_TYPES = {"CONNACK": 2, "PUBLISH": 3, "PUBACK": 4, "PUBREC": 5, "PUBREL": 6,
                "PUBCOMP": 7, "SUBACK": 9, "UNSUBACK": 11, "PINGRESP": 13, "DISCONNECT": 14}

# MQTT 3.1.x has five refusals; a 5.0 reason code says which of them a 3.1.x client gets.
_V3_REFUSAL = {
    ReasonCode.UNSUPPORTED_PROTOCOL_VERSION: ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION,
    ReasonCode.CLIENT_IDENTIFIER_NOT_VALID: ConnackReturnCode.IDENTIFIER_REJECTED,
    ReasonCode.BAD_USER_NAME_OR_PASSWORD: ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD,
    ReasonCode.NOT_AUTHORIZED: ConnackReturnCode.NOT_AUTHORIZED,
    ReasonCode.BANNED: ConnackReturnCode.NOT_AUTHORIZED,
}


def v3_refusal(code: int) -> int:
    """The MQTT 3.1.x CONNACK return code for a refusal given as a 5.0 reason code (1-5 are
    taken as 3.1.x codes already); anything else is "server unavailable"."""
    if 1 <= code <= 5:
        return code
    for v5, v3 in _V3_REFUSAL.items():
        if v5 == code:
            return int(v3)
    return int(ConnackReturnCode.SERVER_UNAVAILABLE)


def v5_refusal(code: int) -> int:
    """The MQTT 5.0 reason code for a refusal given either way."""
    if 1 <= code <= 5:
        for v5, v3 in _V3_REFUSAL.items():
            if v3 == code:
                return int(v5)
        return int(ReasonCode.SERVER_UNAVAILABLE)
    return code


class Faults:
    """What the test asked for, shared by the broker's sockets (and kept across restarts)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Reason codes for the next CONNECTs, one each.
        self.refusals: deque[int] = deque()
        # Packet types withheld from each client id.
        self.withheld: dict[str, set[int]] = {}
        self.sockets: list[FaultySocket] = []  # open ones, to release withheld packets

    def next_refusal(self) -> int | None:
        with self.lock:
            return self.refusals.popleft() if self.refusals else None

    def withheld_from(self, client_id: str | None) -> set[int] | None:
        return self.withheld.get(client_id) if client_id is not None else None


def frames(data: bytes, start: int) -> list[tuple[int, int, int]]:
    """(start, end, packet type) of each MQTT packet in ``data`` from ``start``: the broker
    writes whole packets, so the last ends where the data does."""
    found = []
    at = start
    while at < len(data):
        kind = data[at] >> 4
        length = 0
        shift = 0
        index = at + 1
        while True:  # the remaining length, a variable byte integer
            byte = data[index]
            length |= (byte & 0x7F) << shift
            index += 1
            if not byte & 0x80:
                break
            shift += 7
        end = index + length
        found.append((at, end, kind))
        at = end
    return found


class FaultySocket(socket.socket):
    """An accepted MQTT connection's socket, as the test broker's event loop uses it."""

    def __init__(self, accepted: socket.socket, faults: Faults) -> None:
        super().__init__(accepted.family, accepted.type, accepted.proto, fileno=accepted.detach())
        self.setblocking(False)  # as the event loop made the one it replaces
        self.faults = faults
        self.client_id: str | None = None  # from its CONNECT
        self.silent = False
        self.held: list[bytes] = []  # withheld packets, in order
        self._through = 0  # bytes of a packet partly sent, still to pass
        self._sniffer: PacketReader | None = PacketReader("server")
        self._version = 4
        with faults.lock:
            faults.sockets.append(self)

    def close(self) -> None:
        with self.faults.lock:
            if self in self.faults.sockets:
                self.faults.sockets.remove(self)
        super().close()

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        count = super().recv_into(buffer, nbytes, flags)
        if self.silent:
            if count == 0:
                return 0  # the client closed: that, at least, gets through
            raise BlockingIOError  # what arrived is lost on the way
        if self._sniffer is not None and count:
            return self._first_packets(buffer, count)
        return count

    def _first_packets(self, buffer: WriteableBuffer, count: int) -> int:
        """Learn the client id from the CONNECT, and refuse it if the test asked to."""
        assert self._sniffer is not None
        try:
            packets = list(self._sniffer.feed(bytes(memoryview(buffer)[:count])))
        except MQTTError:
            packets = []
            self._sniffer = None  # bad input: the broker will say so
        if not packets:
            return count
        self._sniffer = None
        connect = packets[0]
        if not isinstance(connect, Connect):
            return count
        self.client_id = connect.client_id or None
        self._version = connect.protocol_version
        code = self.faults.next_refusal()
        if code is None:
            return count
        if self._version == 5:
            answer = Connack(reason_code=v5_refusal(code))
        else:
            answer = Connack(reason_code=v3_refusal(code))
        try:
            super().sendall(encode(answer, self._version))
            self.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        return 0  # the broker sees the client go, never its CONNECT

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        if self.silent:
            return len(memoryview(data))  # into the void
        withheld = self.faults.withheld_from(self.client_id)
        if not withheld and not self._through:
            return super().send(data, flags)
        return self._send_withholding(bytes(data), withheld or set(), flags)

    def _send_withholding(self, data: bytes, withheld: set[int], flags: int) -> int:
        """Send ``data`` without the withheld packets, which are kept; how much of ``data``
        was taken (sent or kept)."""
        segments: list[tuple[int, int, bool]] = []  # (start, end, passes)
        if self._through:
            segments.append((0, min(self._through, len(data)), True))
        for start, end, kind in frames(data, segments[0][1] if segments else 0):
            segments.append((start, end, kind not in withheld))
        passing = b"".join(data[start:end] for start, end, passes in segments if passes)
        sent = super().send(passing, flags) if passing else 0
        taken = 0
        self._through = 0
        for start, end, passes in segments:
            if not passes:
                self.held.append(data[start:end])
                taken = end
                continue
            if sent >= end - start:
                sent -= end - start
                taken = end
                continue
            taken = start + sent  # this packet went out in part: the rest passes later
            self._through = end - taken
            break
        return taken

    def release(self) -> bytes:
        """The withheld packets, handed back (to be sent late)."""
        held, self.held = b"".join(self.held), []
        return held
