"""The relay between a bridge's two sessions, on its own (plain callables for the two sides):
ids kept both ways, flows no topic carries ended on their side, and QoS 0 dropped, not piled
up, while the remote broker is slow or away."""

from __future__ import annotations

from mqlite.broker.bridge.config import BridgeTopic
from mqlite.broker.bridge.relay import Relay
from mqlite.broker.bridge.stats import BridgeStats
from mqlite.protocol import Packet, Puback, Pubcomp, Publish, Pubrec, Pubrel


class Sides:
    def __init__(self, backlog: int = 0, connected: bool = True) -> None:
        self.local: list[Packet] = []
        self.remote: list[Packet] = []
        self.backlog = backlog
        self.connected = connected
        self.stats = BridgeStats("b", "local.b")
        self.relay = Relay("b", (BridgeTopic(pattern="a/#", direction="both", qos=2,
                                             local_prefix="here/", remote_prefix="there/"),),
                           5, self.stats, self.local.append, self._to_remote,
                           lambda: self.backlog, 1000)

    def _to_remote(self, packet: Packet) -> bool:
        if self.connected:
            self.remote.append(packet)
        return self.connected


def test_a_qos_2_flow_keeps_its_id_both_ways() -> None:
    sides = Sides()
    sides.relay.from_local(Publish(topic="here/a/1", payload=b"x", qos=2, packet_id=7))
    assert sides.remote == [Publish(topic="there/a/1", payload=b"x", qos=2, packet_id=7)]
    sides.relay.from_remote(Pubrec(packet_id=7))
    sides.relay.from_local(Pubrel(packet_id=7))
    sides.relay.from_remote(Pubcomp(packet_id=7))
    assert sides.local == [Pubrec(packet_id=7), Pubcomp(packet_id=7)]
    assert sides.remote[1:] == [Pubrel(packet_id=7)] and sides.stats.sent == 1
    sides.relay.from_remote(Publish(topic="there/a/2", payload=b"y", qos=2, packet_id=9))
    assert sides.local[-1] == Publish(topic="here/a/2", payload=b"y", qos=2, packet_id=9)
    sides.relay.from_local(Pubrec(packet_id=9))
    assert sides.remote[-1] == Pubrec(packet_id=9) and sides.stats.received == 1


def test_a_flow_no_topic_carries_ends_on_its_side() -> None:
    sides = Sides()
    sides.relay.from_local(Publish(topic="elsewhere", payload=b"x", qos=2, packet_id=3))
    assert sides.local == [Pubrec(packet_id=3)] and sides.remote == []
    sides.relay.from_local(Pubrel(packet_id=3))
    assert sides.local[-1] == Pubcomp(packet_id=3) and sides.remote == []
    sides.relay.from_remote(Publish(topic="not/ours", payload=b"x", qos=1, packet_id=4))
    assert sides.remote == [Puback(packet_id=4)]


def test_qos_0_is_dropped_while_the_remote_is_slow_or_away() -> None:
    slow = Sides(backlog=5000)
    slow.relay.from_local(Publish(topic="here/a/1", payload=b"x", qos=0))
    slow.relay.from_local(Publish(topic="here/a/1", payload=b"x", qos=1, packet_id=1))
    assert [p.qos for p in slow.remote if isinstance(p, Publish)] == [1]  # QoS 1 still goes
    assert slow.stats.dropped == 1
    away = Sides(connected=False)
    away.relay.from_local(Publish(topic="here/a/1", payload=b"x", qos=0))
    assert away.stats.dropped == 1 and away.stats.sent == 0
