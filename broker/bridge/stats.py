"""What /metrics, the admin API and $SYS show of the bridges: each one's counters, kept by the
bridge (bridge.py), and the reporter that shows them (engine/reporting.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..engine.reporting import MetricFamily

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


class BridgeReporter:
    """The bridges' face to operators (engine/reporting.py): each one's counters and the
    messages its session here holds for the remote broker."""

    name = "bridges"

    def __init__(self, sessions: Any) -> None:
        """``sessions``: the broker's session registry (``get(client_id)``)."""
        self._sessions = sessions
        self.stats: dict[str, BridgeStats] = {}

    def _views(self) -> list[dict[str, Any]]:
        return [stats.view(waiting(self._sessions.get(stats.local_client_id)))
                for stats in self.stats.values()]

    def view(self) -> list[dict[str, Any]]:
        return self._views()

    def families(self) -> list[MetricFamily]:
        views = self._views()
        if not views:
            return []
        return [MetricFamily(name, kind, text, [({"bridge": v["name"]}, float(v[key]))
                                                for v in views])
                for name, kind, key, text in _FAMILIES]

    def sys_values(self) -> dict[str, str]:
        values = {}
        for name, bridge in self.stats.items():
            held = waiting(self._sessions.get(bridge.local_client_id))
            prefix = f"mqlite/bridges/{name}"
            values[f"{prefix}/connected"] = "1" if bridge.connected else "0"
            values[f"{prefix}/messages/sent"] = str(bridge.sent)
            values[f"{prefix}/messages/received"] = str(bridge.received)
            values[f"{prefix}/messages/dropped"] = str(bridge.dropped)
            values[f"{prefix}/messages/queued"] = str(held)
        return values

    def health(self) -> str:
        return ""  # a remote broker away is the bridge's state, not the broker's health

    def route(self, path: list[str], query: dict[str, str]) -> Any:
        return {"bridges": self._views()} if not path else None


def documented() -> list[tuple[str, str, str]]:
    """(name, type, help) of every bridge family, for the metrics reference (each sample is
    labelled with its bridge's name)."""
    return [(name, kind, text) for name, kind, _, text in _FAMILIES]


_FAMILIES = (
    ("mqlite_bridge_connected", "gauge", "connected",
     "1 while the bridge is connected to its remote broker."),
    ("mqlite_bridge_connects_total", "counter", "connects",
     "Successful connections to the remote broker."),
    ("mqlite_bridge_messages_sent_total", "counter", "messages_sent",
     "Messages published to the remote broker (QoS 1: acknowledged by it)."),
    ("mqlite_bridge_messages_received_total", "counter", "messages_received",
     "Messages from the remote broker, published here."),
    ("mqlite_bridge_messages_dropped_total", "counter", "messages_dropped",
     "QoS 0 messages out dropped while the remote broker was away."),
    ("mqlite_bridge_queued_messages", "gauge", "queued_messages",
     "Messages the bridge's session here holds for the remote broker (queued or in flight)."),
)
