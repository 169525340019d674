"""Cluster mode's counters, for /metrics, the admin API and $SYS."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.stats import SECONDS_BUCKETS, Histogram


@dataclass(slots=True)
class ClusterStats:
    forwarded: int = 0  # stream entries written for other nodes' subscribers
    received: int = 0  # messages from other nodes delivered here
    duplicates: int = 0  # forwarded messages that came twice (dropped)
    forwards_dropped: int = 0  # forwards not written: Redis was unavailable (QoS 0)
    outages: int = 0  # times the connection to Redis was lost
    route_loads: int = 0  # times a node's whole route set was loaded
    takeovers: int = 0  # client ids this node let go because another node took them
    inbox_pauses: int = 0  # times reading the stream waited for a subscriber to drain
    # Seconds from a node's route change to its arrival here.
    route_delay: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))
