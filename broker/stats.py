"""Counters published under $SYS/broker/."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Stats:
    messages_received: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    clients_connected: int = 0
    clients_total: int = 0
    # Connections closed at accept: their listener was at its max_connections.
    connections_refused: int = 0
