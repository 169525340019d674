"""Per-connection facts and the keepalive clock of the client. Time comes in as an argument."""

from __future__ import annotations


class ConnectionState:
    __slots__ = (
        "connected",
        "disconnecting",
        "last_in",
        "last_out",
        "opened_at",
        "ping_sent_at",
        "ready",
        "server_keep_alive",
        "server_maximum_packet_size",
        "server_receive_maximum",
    )

    def __init__(self) -> None:
        self.closed()

    def opened(self, now: float) -> None:
        self.closed()
        self.opened_at = self.last_in = self.last_out = now

    def closed(self) -> None:
        self.connected = False
        # Connected, and the post-CONNACK work (resubscribing, resending) is done.
        self.ready = False
        self.disconnecting = False
        self.opened_at = self.last_in = self.last_out = 0.0
        self.ping_sent_at: float | None = None
        # What the broker's CONNACK said (MQTT 5); None or 0 when it said nothing.
        self.server_keep_alive: int | None = None
        self.server_receive_maximum = 0
        self.server_maximum_packet_size = 0

    def check(self, now: float, keepalive: int, connect_timeout: float) -> str | None:
        """"ping" when a PINGREQ is due, "timeout" when the connection must be dropped."""
        if not self.connected:
            # CONNACK must come within the keepalive (as paho), or connect_timeout without one.
            limit = keepalive or connect_timeout
            return "timeout" if now - self.opened_at >= max(limit, connect_timeout) else None
        if not keepalive:
            return None
        if self.ping_sent_at is not None:
            if self.last_in <= self.ping_sent_at:
                return "timeout" if now - self.ping_sent_at >= keepalive else None
            # Bytes came since (a large packet arriving slowly, say): the broker is alive.
            self.ping_sent_at = None
        if now - self.last_out >= keepalive or now - self.last_in >= keepalive:
            self.ping_sent_at = now
            return "ping"
        return None

    def pong(self) -> None:
        self.ping_sent_at = None

    def next_deadline(self, now: float, keepalive: int, connect_timeout: float) -> float:
        if not self.connected:
            limit = max(keepalive or connect_timeout, connect_timeout)
            return max(0.0, self.opened_at + limit - now)
        if not keepalive:
            return 3600.0
        if self.ping_sent_at is not None and self.last_in <= self.ping_sent_at:
            return max(0.0, self.ping_sent_at + keepalive - now)
        return max(0.0, min(self.last_out, self.last_in) + keepalive - now)
