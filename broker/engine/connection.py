"""One client connection: its input reader, output buffer and per-connection protocol state.

Handlers queue bytes here; only the event loop reads from and writes to the socket, once per
loop turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from mqlite.protocol import Disconnect, Packet, PacketReader, Properties, encode, encode_within

from ..hooks import ClientInfo
from . import packet_log
from .negotiated import DEFAULTS, Negotiated

if TYPE_CHECKING:
    from .auth_exchange import Exchange
    from .stats import Stats

# Protocol levels as people name them, for logs.
VERSION_NAMES = {3: "3.1", 4: "3.1.1", 5: "5.0"}

# Connection states.
CONNECTING = 0  # accepted, no CONNECT processed yet
CONNECTED = 1  # CONNACK 0 sent
CLOSING = 2  # no more input is read; output is flushed, then the socket is closed
CLOSED = 3


# The output of every connection with nothing to send (most, between turns): send_bytes gives
# a connection a list of its own, and the loop puts this one back once all of it has left.
NO_OUTPUT: list[bytes] = []


class TlsIdentity(NamedTuple):
    """Who a TLS client's certificate says it is."""

    certificate: dict[str, Any] | None  # getpeercert()'s form; None: it sent none
    # The username it gives on a listener that takes usernames from certificates ("" if it
    # sent none); None if the listener does not.
    username: str | None


class AcceptedBy(Protocol):
    """What the event loop counts a connection against (its listener, for max_connections)."""

    connections: int


class Framing(Protocol):
    """A transport's framing around the MQTT bytes (net/websocket.py's WebSocket layer): net
    drives it; the kernel only carries it with the connection."""

    to_send: bytearray  # control replies waiting (the upgrade's answer, pongs, a close)
    unsent: bytes  # framed bytes the socket did not take yet
    closed: str | None  # why the framing ended, if it did

    def receive(self, data: bytes | memoryview) -> bytes:
        """The MQTT bytes in what was read."""

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Queue a close frame (1000: a normal closure); the connection is to end."""

    def take(self, mqtt: list[bytes]) -> bytes:
        """Everything to write now, ``mqtt`` framed."""


class Connection:
    __slots__ = (
        "accepted_by",
        "auth_exchange",
        "bridge",
        "client_id",
        "client_info",
        "close_reason",
        "context",
        "deadline",
        "deadline_check",
        "dirty",
        "engine_holds",
        "held",
        "keepalive",
        "listener",
        "mount_point",
        "negotiated",
        "out",
        "out_size",
        "peer",
        "publish_will",
        "reader",
        "sock",
        "state",
        "stats",
        "tls_identity",
        "version",
        "websocket",
    )

    def __init__(self, sock: Any, peer: str, reader: PacketReader, dirty: set[Connection],
                 deadline: float, stats: Stats) -> None:
        self.sock = sock  # owned by the event loop; nothing else touches it
        self.peer = peer
        self.reader = reader
        # The loop's set of connections to flush (or close) at the end of this turn.
        self.dirty = dirty
        # The broker's counters: send() counts the packets (PUBLISH are counted where sent).
        self.stats = stats
        self.out: list[bytes] = NO_OUTPUT
        self.out_size = 0
        self.state = CONNECTING
        self.version = 4
        self.client_id: str | None = None
        # Connected with the bridge bit (protocol level 0x83 / 0x84): another broker.
        self.bridge = False
        # The listener that accepted it, by name; who it is, for hooks (set at CONNECT).
        self.listener = ""
        self.accepted_by: AcceptedBy | None = None  # the loop's listener object
        # Who it is, for hooks: see who(). Kept from CONNECT on only when it says more than
        # the connection does (a username, a certificate, an authentication method): an
        # anonymous client's would cost every idle connection 88 bytes.
        self.client_info: ClientInfo | None = None
        # What its packet handlers get from CONNACK on (sessions.open / detach): a
        # services.Context, which imports this module (so it is typed where it is read).
        self.context: Any = None
        # TLS: who the client's certificate says it is (None: not a TLS connection).
        self.tls_identity: TlsIdentity | None = None
        # On a ws / wss listener: the WebSocket layer the event loop feeds and frames through.
        self.websocket: Framing | None = None
        # The listener's mount point: prefixed to the topics this client publishes and
        # subscribes to, taken off those it receives.
        self.mount_point = ""
        # Monotonic time by which the next packet must arrive (connect timeout, then 1.5 x
        # keep alive); 0 means none.
        self.deadline = deadline
        # The bucket of core.deadlines that checks ``deadline`` (see deadlines.py), if any.
        self.deadline_check: dict[Connection, None] | None = None
        self.keepalive = 0
        # Its refusal is held back (repeated authentication failures): its input is ignored.
        self.held = False
        # Cluster mode: its output waits for Redis to confirm this many turns' writes.
        self.engine_holds = 0
        self.close_reason = ""
        # An MQTT 5 enhanced authentication in progress (at CONNECT, or re-authenticating).
        self.auth_exchange: Exchange | None = None
        # Whether the will is published when this connection ends (not after DISCONNECT 0).
        self.publish_will = True
        # MQTT 5 limits the client asked for, and topic aliases in both directions.
        self.negotiated = DEFAULTS

    def __repr__(self) -> str:
        return f"<Connection {self.client_id!r} from {self.peer}>"

    def who(self) -> ClientInfo:
        """Who this (connected) client is, as hooks see it."""
        info = self.client_info
        if info is None:
            assert self.client_id is not None
            info = self.client_info = ClientInfo(client_id=self.client_id, peer=self.peer,
                                                 listener=self.listener,
                                                 protocol_version=self.version)
        return info

    @property
    def open(self) -> bool:
        return self.state < CLOSING

    def send_bytes(self, data: bytes) -> None:
        out = self.out
        if not out:
            self.dirty.add(self)
            if out is NO_OUTPUT:
                out = self.out = []
        out.append(data)
        self.out_size += len(data)

    def own_negotiated(self) -> Negotiated:
        """This connection's own MQTT 5 state, to change (see negotiated.py)."""
        if self.negotiated is DEFAULTS:
            self.negotiated = Negotiated()
        return self.negotiated

    def send(self, packet: Packet) -> bool:
        """Queue ``packet``, leaving out optional properties that would take it over the
        client's Maximum Packet Size; False, and nothing queued, if it cannot fit
        [MQTT-3.1.2-24]."""
        data = encode(packet, self.version)
        limit = self.negotiated.max_packet_size
        if limit is not None and len(data) > limit:
            fitted = encode_within(packet, self.version, limit)
            if fitted is None:
                return False
            data = fitted
        if packet_log.SWITCH.on:
            packet_log.packet_out(self.client_id, self.peer, packet_log.fields(packet),
                                  len(data))
        self.send_bytes(data)
        stats = self.stats
        stats.control_packets_sent += 1
        stats.control_bytes_sent += len(data)
        return True

    def close(self, reason: str, disconnect_code: int | None = None,
              properties: Properties | None = None) -> None:
        """Stop reading, flush what is queued (with an MQTT 5 DISCONNECT first if a code is
        given and CONNACK went out), then close."""
        if not self.open:
            return
        if disconnect_code is not None and self.version == 5 and self.state == CONNECTED:
            self.send(Disconnect(reason_code=disconnect_code,
                                 properties=properties or Properties()))
        self.state = CLOSING
        self.close_reason = reason
        self.dirty.add(self)
