"""The broker's counters, for $SYS, /metrics and /api/v1/stats: plain integers on objects the
loop already holds, each bumped where the thing happens, and histograms bucketed with
``bisect``. Everything that can be read off the state instead (sessions, subscriptions,
queue depths) is computed when asked, not counted."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Why a message was dropped (the label of mqlite_messages_dropped_total).
QUEUE_FULL = "queue_full"
EXPIRED = "expired"
TOO_LARGE = "too_large"  # over message_size_limit, or the client's Maximum Packet Size
NO_SUBSCRIBERS = "no_subscribers"
ACL = "acl"  # a publish or a delivery the access checks refused
OUTPUT_FULL = "output_buffer_full"  # QoS 0 to a client whose output is over its soft limit
# Refused with 0x97 (queue_overflow = "reject"): a full queue or store, nobody got it.
REJECTED = "rejected_quota_exceeded"
DROP_REASONS = (QUEUE_FULL, EXPIRED, TOO_LARGE, NO_SUBSCRIBERS, ACL, OUTPUT_FULL, REJECTED)


class Histogram:
    """Cumulative-bucket histogram (Prometheus's): ``observe`` is one ``bisect`` and two
    additions."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: over every bound (+Inf only)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with (inf, count)."""
        total = 0
        rows = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            rows.append((bound, total))
        return rows


SECONDS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class Stats:
    # PUBLISH packets; by QoS only 1 and 2 are counted (QoS 0 is the rest: no cost per
    # QoS 0 message); the payload bytes received.
    messages_received: int = 0
    messages_sent: int = 0
    received_qos: list[int] = field(default_factory=lambda: [0, 0, 0])
    sent_qos: list[int] = field(default_factory=lambda: [0, 0, 0])
    publish_bytes_received: int = 0
    # Every other packet, counted in its handler and in Connection.send.
    control_packets_received: int = 0
    control_packets_sent: int = 0
    control_bytes_sent: int = 0
    # Bytes of MQTT packets read and written (before TLS, after WebSocket framing is off).
    bytes_received: int = 0
    bytes_sent: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    clients_connected: int = 0
    clients_maximum: int = 0
    clients_total: int = 0  # CONNACKs accepted
    sessions_expired: int = 0
    sockets_total: int = 0  # accepted sockets, MQTT and HTTP
    connections_total: int = 0  # accepted MQTT connections
    # CONNECTs refused, by reason (the reason code's name), and sockets closed at accept
    # because their listener was at its max_connections.
    refused: dict[str, int] = field(default_factory=dict)
    connections_refused: int = 0
    # Flow control: publishers paused for a draining session, and sessions found to have
    # stopped draining while a publisher waited for them.
    publisher_pauses: int = 0
    stalled_sessions: int = 0
    store_commits: int = 0
    store_syncs: int = 0
    store_commit_seconds: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))
    loop_turn_seconds: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))

    @property
    def received_by_qos(self) -> list[int]:
        _, one, two = self.received_qos
        return [self.messages_received - one - two, one, two]

    @property
    def sent_by_qos(self) -> list[int]:
        _, one, two = self.sent_qos
        return [self.messages_sent - one - two, one, two]

    @property
    def packets_received(self) -> int:
        return self.messages_received + self.control_packets_received

    @property
    def publish_bytes_sent(self) -> int:
        """Bytes of the PUBLISH packets sent (header and topic included), as the bytes sent
        less every other packet's: nothing counted per delivery."""
        return max(0, self.bytes_sent - self.control_bytes_sent)

    @property
    def messages_dropped(self) -> int:
        return sum(self.dropped.values())

    def refusal(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
