"""What an operator sees of one stored session (``mqlite sessions``, the admin API), read from
a single broker's database or from a cluster's Redis."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SessionSummary:
    client_id: str
    online: bool
    protocol_version: int
    expiry_interval: int
    subscriptions: int
    queued: int
    oldest_queued_at: float | None
    last_seen: float | None


@dataclass(slots=True)
class ClusterSessionSummary(SessionSummary):
    node: str  # the node that owns it
    expires_in: float | None  # seconds left of an offline session's expiry (None: none)
