"""What /metrics, the admin API and the status of a bridge show: its counters, kept by the
bridge (bridge.py) and read off the core without importing the bridge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.session import Session


class BridgeStats:
    __slots__ = ("address", "connected", "connects", "dropped", "last_error",
                 "local_client_id", "name", "received", "sent", "subscribed")

    def __init__(self, name: str, local_client_id: str) -> None:
        self.name = name
        self.local_client_id = local_client_id  # its session here: its queue is the backlog
        self.address = ""  # the remote broker's, while connected or connecting
        self.connected = False
        # The remote broker has answered this connection's subscriptions to the in topics.
        self.subscribed = False
        self.connects = 0  # successful connections to the remote broker
        self.sent = 0  # messages published to the remote broker (acknowledged if QoS 1)
        self.received = 0  # messages from the remote broker, published here
        # QoS 0 messages out dropped: the remote side was down, or not reading fast enough
        self.dropped = 0
        self.last_error = ""

    def view(self, queued: int) -> dict[str, Any]:
        """JSON-ready, with the messages waiting in its session here."""
        return {"name": self.name, "address": self.address, "connected": self.connected,
                "connects": self.connects, "messages_sent": self.sent,
                "messages_received": self.received, "messages_dropped": self.dropped,
                "queued_messages": queued, "last_error": self.last_error}


def waiting(session: Session | None) -> int:
    """What a bridge's session here holds for the remote broker: queued or in flight."""
    return session.queued + len(session.inflight) if session is not None else 0
