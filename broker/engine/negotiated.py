"""What an MQTT 5 client's CONNECT asked of the broker (how much it takes in flight, its
Maximum Packet Size, topic aliases towards it) and the topic aliases of
its connection in both directions. A connection that asked for nothing and uses no alias
(every MQTT 3.1.x one) shares ``DEFAULTS``, which is never changed: the handlers give a
connection its own (``Negotiated()``) before changing anything."""

from __future__ import annotations


class Negotiated:
    __slots__ = ("inbound_aliases", "max_packet_size", "outbound_aliases", "receive_maximum",
                 "topic_alias_maximum")

    def __init__(self) -> None:
        self.receive_maximum = 65_535  # the client's Receive Maximum
        self.max_packet_size: int | None = None  # the client's Maximum Packet Size
        self.topic_alias_maximum = 0  # aliases it takes from the broker
        self.inbound_aliases: dict[int, str] = {}  # set by the client
        self.outbound_aliases: dict[str, int] = {}  # set by the broker


DEFAULTS = Negotiated()
