"""The QoS flows across a bridge, packet by packet, each keeping its packet id.

The bridge joins two sessions: its session in this broker (the local side sends it the out
topics' messages, and takes the in topics' messages from it) and its session on the remote
broker. Rather than ending a flow on one side and starting another on the other, the relay
passes each packet of a flow across with its packet id: a PUBLISH the local session sends
under id 7 goes to the remote broker as id 7, the remote's PUBREC 7 comes back as PUBREC 7,
the local PUBREL 7 goes out as PUBREL 7, and so on; the same the other way.

So the only state is the two sessions' own, and each side's rules give exactly once across
the bridge: the local session keeps an outgoing QoS 2 message on disk and sends it again
(DUP, the same id) until the PUBREC, which reaches it only once the remote broker has the
message; the remote broker recognises the resend by its id. The local PUBREL is sent after the
commit that records the PUBREC, and only then does the relay release the message remotely.
Coming in, the local broker records the id with the message before the PUBREC goes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mqlite.protocol import (
    EMPTY_PROPERTIES,
    Packet,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Unsuback,
    topic_matches_filter,
)

from .config import BridgeTopic
from .stats import BridgeStats

log = logging.getLogger("mqlite.broker")


class Relay:
    def __init__(self, name: str, topics: tuple[BridgeTopic, ...], protocol: int,
                 stats: BridgeStats, to_local: Callable[[Packet], None],
                 to_remote: Callable[[Packet], bool], remote_backlog: Callable[[], int],
                 backlog_limit: int) -> None:
        self._name = name
        self._out = [topic for topic in topics if topic.outgoing]
        self._in = [topic for topic in topics if topic.incoming]
        self._v5 = protocol == 5
        self._stats = stats
        self._to_local = to_local
        self._to_remote = to_remote  # False: not connected, nothing sent
        # Bytes written for the remote broker and not yet taken by it: QoS 0 messages out
        # are dropped above backlog_limit (QoS 1/2 are bounded by the session's window), as a
        # slow subscriber's are.
        self._remote_backlog = remote_backlog
        self._backlog_limit = backlog_limit
        # QoS 2 flows one side started that no topic carries (a subscription of an earlier
        # configuration, say): answered on that side, by their ids.
        self._ended_here: set[int] = set()
        self._ended_there: set[int] = set()

    def from_local(self, packet: Packet) -> None:
        """What the broker sent the bridge's session."""
        if isinstance(packet, Publish):
            self._out_publish(packet)
        elif isinstance(packet, Pubrel):
            if packet.packet_id in self._ended_here:
                self._ended_here.discard(packet.packet_id)
                self._to_local(Pubcomp(packet_id=packet.packet_id))
            else:
                self._to_remote(Pubrel(packet_id=packet.packet_id))
        elif isinstance(packet, Puback | Pubrec | Pubcomp):
            # The local broker's side of a message that came in: its acknowledgement, sent
            # after the commit that stored what it acknowledges.
            self._to_remote(packet)
        elif isinstance(packet, Suback | Unsuback):
            for code in packet.reason_codes:
                if code >= 0x80:
                    log.warning("bridge %s: a local subscription was refused: 0x%02x",
                                self._name, code)

    def from_remote(self, packet: Packet) -> None:
        """A PUBLISH flow's packet from the remote broker (the client's relay mode)."""
        if isinstance(packet, Publish):
            self._in_publish(packet)
        elif isinstance(packet, Pubrel):
            if packet.packet_id in self._ended_there:
                self._ended_there.discard(packet.packet_id)
                self._to_remote(Pubcomp(packet_id=packet.packet_id))
            else:
                self._to_local(Pubrel(packet_id=packet.packet_id))
        elif isinstance(packet, Puback | Pubcomp):
            self._stats.sent += 1
            self._to_local(packet)
        elif isinstance(packet, Pubrec):
            if packet.reason_code >= 0x80:
                log.warning("bridge %s: the remote broker refused a message: 0x%02x",
                            self._name, packet.reason_code)
            self._to_local(packet)

    def _out_publish(self, packet: Publish) -> None:
        topic = _match(self._out, packet.topic, local=True)
        packet_id = packet.packet_id
        if topic is None:  # not carried: the flow ends here
            if packet_id is not None:
                if packet.qos == 2:
                    self._ended_here.add(packet_id)
                self._to_local(Puback(packet_id=packet_id) if packet.qos == 1
                               else Pubrec(packet_id=packet_id))
            return
        if packet.qos == 0 and self._remote_backlog() > self._backlog_limit:
            self._stats.dropped += 1
            return
        sent = self._to_remote(Publish(
            topic=topic.to_remote(packet.topic), payload=packet.payload, qos=packet.qos,
            retain=packet.retain, dup=packet.dup, packet_id=packet_id,
            properties=packet.properties if self._v5 else EMPTY_PROPERTIES))
        if not sent and packet.qos == 0:
            self._stats.dropped += 1  # the remote broker is away: QoS 0 may be lost
        elif sent and packet.qos == 0:
            self._stats.sent += 1

    def _in_publish(self, packet: Publish) -> None:
        topic = _match(self._in, packet.topic, local=False)
        packet_id = packet.packet_id
        if topic is None:
            if packet_id is not None:
                if packet.qos == 2:
                    self._ended_there.add(packet_id)
                self._to_remote(Puback(packet_id=packet_id) if packet.qos == 1
                                else Pubrec(packet_id=packet_id))
            return
        self._stats.received += 1
        self._to_local(Publish(
            topic=topic.to_local(packet.topic), payload=packet.payload, qos=packet.qos,
            retain=packet.retain, dup=packet.dup, packet_id=packet_id,
            properties=packet.properties))


def _match(topics: list[BridgeTopic], topic: str, *, local: bool) -> BridgeTopic | None:
    for candidate in topics:
        if topic_matches_filter(candidate.local_filter if local else candidate.remote_filter,
                                topic):
            return candidate
    return None
