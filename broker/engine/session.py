"""Session state (spec 4.1): what outlives a connection for a persistent client."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqlite.protocol import Will
from mqlite.protocol.packet_ids import MAX_PACKET_ID, next_free_id
from mqlite.protocol.qos_flow import FlowState

from ..message import Message

if TYPE_CHECKING:
    from ..hooks import ClientInfo
    from .connection import Connection
    from .timers import Timer

# Delivery states, in the order a QoS 2 delivery goes through them.
QUEUED = FlowState.QUEUED
AWAIT_PUBACK = FlowState.AWAIT_PUBACK
AWAIT_PUBREC = FlowState.AWAIT_PUBREC
AWAIT_PUBCOMP = FlowState.AWAIT_PUBCOMP


# Seconds a congested session may go without completing a delivery and still pause its
# publishers (or, in cluster mode, the reading of its node's stream): past it, the session
# counts as stalled, throttles no one, and only its own queue grows. It bounds what a
# subscriber that stops reading costs the others.
PROGRESS_WINDOW = 0.025


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionOptions:
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    identifier: int | None = None


class Delivery:
    """One message on its way to one session: queued, or in flight under a packet id."""

    __slots__ = ("message", "packet_id", "qos", "retain", "seq", "state", "subscription_ids")

    def __init__(self, seq: int, message: Message, qos: int, retain: bool,
                 subscription_ids: tuple[int, ...] = ()) -> None:
        self.seq = seq
        self.message = message
        self.qos = qos
        self.retain = retain
        self.subscription_ids = subscription_ids
        self.packet_id: int | None = None
        self.state = QUEUED


# Shared by every session with nothing queued; Session.queue_append replaces it before any
# append, so it stays empty. The same for the other collections most sessions leave empty
# (an idle connection's memory is mostly such containers): each is replaced by a session's
# own before the first insertion, by the one method (or branch) that inserts.
_NOTHING_QUEUED: deque[Delivery] = deque()
NOTHING_IN_FLIGHT: dict[int, Delivery] = {}
_NO_SUBSCRIPTIONS: dict[str, SubscriptionOptions] = {}
_NO_INBOUND_QOS2: set[int] = set()


class Session:
    __slots__ = ("arrivals", "client_id", "client_info", "connected_at",
                 "connection", "disconnected_at",
                 "expiry_interval", "expiry_timer", "inbound_qos2", "inflight", "inflight_bytes",
                 "next_packet_id", "next_seq", "pending_will", "progress_at",
                 "protocol_version", "queue", "queued_bytes", "stalled", "stored",
                 "stored_from", "stored_queued", "subscriptions", "will", "will_timer")

    def __init__(self, client_id: str, protocol_version: int, expiry_interval: int) -> None:
        self.client_id = client_id
        self.protocol_version = protocol_version
        # Seconds the session outlives its connection: 0 ends it with the connection.
        self.expiry_interval = expiry_interval
        # Whether the store holds this session (the journal keeps it up to date).
        self.stored = False
        self.subscriptions: dict[str, SubscriptionOptions] = _NO_SUBSCRIPTIONS
        # Outbound QoS 1/2 in flight, by packet id, in the order they were sent (start_flight
        # replaces the shared empty one).
        self.inflight: dict[int, Delivery] = NOTHING_IN_FLIGHT
        self.inflight_bytes = 0  # their payloads' bytes, against max_inflight_bytes
        # Messages waiting for the window, oldest first: those held in memory. Most sessions
        # never queue anything: they share one empty deque (760 bytes each otherwise) until
        # queue_append(). A persistent session on a disk store keeps only the next ones here;
        # the rest of its queue is in the store (see stored_queue.py):
        self.queue: deque[Delivery] = _NOTHING_QUEUED
        # ``stored_queued`` queued messages held only by the store, every one with a seq of
        # at least ``stored_from`` and above every seq in ``queue``; and the messages queued
        # behind them this loop turn, held here until the turn's commit has stored them.
        self.stored_queued = 0
        self.stored_from = 0
        self.arrivals: list[Delivery] | None = None
        # Payload and topic bytes of every queued message, wherever it is held.
        self.queued_bytes = 0
        # Inbound QoS 2 packet ids answered with PUBREC, awaiting PUBREL.
        self.inbound_qos2: set[int] = _NO_INBOUND_QOS2
        # Where the search for a free outbound packet id starts; the ids in use are the keys
        # of ``inflight``, so no allocator keeps a second copy of them.
        self.next_packet_id = 1
        self.next_seq = 1
        # When an outbound flow last completed, or the window last filled from empty
        # (monotonic: progress is owed from then); and whether the queue stopped draining: a
        # stalled session throttles no publisher (it costs only its own queue).
        self.progress_at = 0.0
        self.stalled = False
        self.connection: Connection | None = None
        # Who last connected with this session, for the access checks of its deliveries
        # (also while it is offline); None for a session restored from the store.
        self.client_info: ClientInfo | None = None
        # Wall-clock time the last connection ended (None while connected): session expiry
        # and will delays count from it, across broker restarts.
        self.disconnected_at: float | None = None
        # Wall-clock time its current connection was made (for the admin API).
        self.connected_at: float | None = None
        # The will of the current connection; after an unclean close with a Will Delay
        # Interval, the will waiting for that delay (spec 3.1.3.2.2).
        self.will: Will | None = None
        self.pending_will: Will | None = None
        self.will_timer: Timer | None = None
        self.expiry_timer: Timer | None = None

    @property
    def persistent(self) -> bool:
        return self.expiry_interval > 0

    @property
    def queued(self) -> int:
        """Messages queued, wherever they are held."""
        arrivals = self.arrivals
        return len(self.queue) + self.stored_queued + (len(arrivals) if arrivals else 0)

    def queue_append(self, delivery: Delivery) -> None:
        """The only way into ``queue``: the shared empty one is never appended to."""
        queue = self.queue
        if queue is _NOTHING_QUEUED:
            queue = self.queue = deque()
        queue.append(delivery)

    def subscribe(self, topic_filter: str, options: SubscriptionOptions) -> None:
        if self.subscriptions is _NO_SUBSCRIPTIONS:
            self.subscriptions = {}
        self.subscriptions[topic_filter] = options

    def restore_flight(self, delivery: Delivery) -> None:
        """An in-flight delivery read back from the store."""
        assert delivery.packet_id is not None
        if self.inflight is NOTHING_IN_FLIGHT:
            self.inflight = {}
        self.inflight[delivery.packet_id] = delivery

    def await_pubrel(self, packet_id: int) -> None:
        """An inbound QoS 2 id answered with PUBREC."""
        if self.inbound_qos2 is _NO_INBOUND_QOS2:
            self.inbound_qos2 = set()
        self.inbound_qos2.add(packet_id)

    def queue_extend(self, deliveries: list[Delivery]) -> None:
        """Append a batch (read back from the store), as queue_append does one."""
        if self.queue is _NOTHING_QUEUED:
            self.queue = deque(deliveries)
        else:
            self.queue.extend(deliveries)

    def take_packet_id(self) -> int:
        """A free outbound packet id; the ids in use are the keys of ``inflight``."""
        inflight = self.inflight
        candidate = self.next_packet_id
        if candidate in inflight:  # rarely: the next one is free, and is taken without a call
            candidate = next_free_id(inflight, candidate)
        self.next_packet_id = candidate % MAX_PACKET_ID + 1
        return candidate

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq
