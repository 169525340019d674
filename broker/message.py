"""An application message as the broker routes it, stored once and shared by every delivery."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mqlite.protocol import EMPTY_PROPERTIES, Properties


@dataclass(slots=True, kw_only=True)
class Message:
    """A PUBLISH's application message: topic, payload, QoS, retain flag and MQTT 5
    properties, with what the broker keeps beside them (when it expires, which client sent
    it). Hooks receive it and may return a changed copy (``dataclasses.replace``)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties = EMPTY_PROPERTIES
    # Monotonic deadline from the MQTT 5 Message Expiry Interval, or None.
    expires_at: float | None = None
    # Who published it, for No Local; None for $SYS.
    origin: str | None = None
    # The row holding the body in a persistent store, once stored (the body is stored once,
    # however many queues refer to it).
    store_id: int | None = None
    # Cluster mode: its id among the nodes (node|epoch|sequence of the node it was published
    # on), once forwarded; kept with a persistent session's stored deliveries.
    cluster_id: str | None = None
    # Monotonic time it was published (for one read back from a store, from the time the
    # store recorded; 0.0: unknown).
    received_at: float = 0.0

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def properties_at(self, now: float) -> Properties:
        """Properties to forward: the Message Expiry Interval counts down (spec 3.3.2.3.3)."""
        if self.expires_at is None:
            return self.properties
        remaining = max(0, int(self.expires_at - now + 0.999))
        return replace(self.properties, message_expiry_interval=remaining)

    @property
    def size(self) -> int:
        return len(self.payload) + len(self.topic)
