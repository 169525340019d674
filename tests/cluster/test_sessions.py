"""Persistent sessions in cluster mode (real redis-server with AOF, nodes as subprocesses):
they move between nodes with their queues and in-flight messages, a dead node's are adopted,
a node paused past its TTL cannot write to them, and they outlive a Redis restart."""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from mqlite.broker.cluster.store import WRITE, session_keys
from mqlite.protocol import (
    Connack,
    Disconnect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
)

from ..broker.helpers import PahoClient, RawClient
from ..broker_process import BrokerProcess
from ..redis_server import RedisServer
from .conftest import NODE_TTL, start_node

PROBE = b"probe"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Subscriber:
    """A persistent MQTT 5 subscriber on raw packets, across its connections: it
    acknowledges every flow, and takes a QoS 2 message once (at its first PUBLISH; resends
    of that packet id are ignored until its PUBREL), as its session state says."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.awaiting_release: set[int] = set()
        self.received: list[bytes] = []
        self.conn: RawClient | None = None
        self.resent: list[Publish] = []  # PUBLISH packets that came with DUP set

    def connect(self, node: BrokerProcess) -> Connack:
        self.conn = RawClient(node.address, version=5)
        return self.conn.connect(self.client_id, clean_start=False,
                                 properties=Properties(session_expiry_interval=600))

    def subscribe(self, topic_filter: str, qos: int) -> None:
        assert self.conn is not None
        assert self.conn.subscribe(topic_filter, qos).reason_codes == [qos]

    def pump(self, seconds: float = 0.0, until: Callable[[], bool] | None = None,
             timeout: float = 15.0) -> None:
        """Take what comes for ``seconds``, or until ``until()`` (AssertionError after
        ``timeout``); stops when the broker closes the connection."""
        assert self.conn is not None
        deadline = time.monotonic() + (seconds if until is None else timeout)
        while until is None or not until():
            left = deadline - time.monotonic()
            if left <= 0:
                if until is None:
                    return
                raise AssertionError(f"{self.client_id}: not all in {timeout}s")
            try:
                packet = self.conn.receive(timeout=min(left, 0.2))
            except AssertionError as exc:
                if "closed" in str(exc):
                    return
                continue
            self._handle(packet)

    def _handle(self, packet: object) -> None:
        assert self.conn is not None
        if isinstance(packet, Publish):
            if packet.dup:
                self.resent.append(packet)
            fresh = packet.qos < 2 or packet.packet_id not in self.awaiting_release
            if fresh and packet.payload != PROBE:
                self.received.append(packet.payload)
            if packet.qos == 1:
                assert packet.packet_id is not None
                self.conn.send(Puback(packet_id=packet.packet_id))
            elif packet.qos == 2:
                assert packet.packet_id is not None
                self.awaiting_release.add(packet.packet_id)
                self.conn.send(Pubrec(packet_id=packet.packet_id))
        elif isinstance(packet, Pubrel):
            self.awaiting_release.discard(packet.packet_id)
            self.conn.send(Pubcomp(packet_id=packet.packet_id))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _publisher(node: BrokerProcess) -> PahoClient:
    client = PahoClient(node.address, client_id=_name("pub"), version=5,
                        reconnect_on_failure=False)
    client.connect()
    return client


def _wait_for_route(publisher: PahoClient, topic: str) -> None:
    """QoS 1 probes until the PUBACK says a subscriber is known (not 0x10)."""
    deadline = time.monotonic() + 5
    while publisher.publish(topic, PROBE, qos=1) != 0:
        assert time.monotonic() < deadline, f"no route for {topic}"
        time.sleep(0.01)  # the route comes over Redis: nothing to wait on


def test_a_session_moves_to_another_node_with_the_500_messages_queued_meanwhile(
        nodes: list[BrokerProcess]) -> None:
    n1, n2, n3 = nodes
    topic = _name("moving")
    subscriber = Subscriber(_name("mover"))
    assert not subscriber.connect(n1).session_present
    subscriber.subscribe(topic, 1)
    assert subscriber.conn is not None
    subscriber.conn.send(Disconnect())
    subscriber.close()
    publisher = _publisher(n2)
    _wait_for_route(publisher, topic)
    count = 500
    for index in range(count):  # each acknowledged once the node holding it stored it
        assert publisher.publish(topic, str(index).encode(), qos=1) == 0
    publisher.disconnect()
    assert subscriber.connect(n3).session_present
    expected = [str(index).encode() for index in range(count)]
    subscriber.pump(until=lambda: len(subscriber.received) >= count)
    assert subscriber.received == expected  # all, in order
    subscriber.close()


def test_unacknowledged_messages_are_resent_with_dup_and_their_packet_ids_on_another_node(
        nodes: list[BrokerProcess]) -> None:
    n1, n2, n3 = nodes
    topic = _name("inflight")
    client_id = _name("unacked")
    first = RawClient(n1.address, version=5)
    first.connect(client_id, clean_start=False,
                  properties=Properties(session_expiry_interval=600))
    first.subscribe(topic, 2)
    publisher = _publisher(n2)
    _wait_for_route(publisher, topic)
    for index in range(3):
        assert publisher.publish(topic, f"m{index}".encode(), qos=2) == 0
    sent = []
    while len(sent) < 4:  # the probe and three messages, none acknowledged
        packet = first.receive()
        assert isinstance(packet, Publish)
        sent.append(packet)
    first.close()  # gone without DISCONNECT
    again = RawClient(n3.address, version=5)
    assert again.connect(client_id, clean_start=False,
                         properties=Properties(session_expiry_interval=600)).session_present
    resent = [again.receive() for _ in sent]
    assert all(isinstance(p, Publish) and p.dup for p in resent)
    assert [(p.packet_id, p.payload) for p in resent] == [  # type: ignore[union-attr]
        (p.packet_id, p.payload) for p in sent]
    again.close()
    publisher.disconnect()


class Feeder(threading.Thread):
    """Publishes numbered messages until stopped, recording those acknowledged as
    delivered (reason code 0) and any "no matching subscribers" (0x10)."""

    def __init__(self, node: BrokerProcess, topic: str, qos: int, prefix: str) -> None:
        super().__init__(daemon=True)
        self.client = _publisher(node)
        self.topic, self.qos, self.prefix = topic, qos, prefix
        self.acknowledged: list[bytes] = []
        self.unmatched = 0
        self.stopping = threading.Event()
        self.pause = 0.002

    def run(self) -> None:
        index = 0
        while not self.stopping.is_set():
            payload = f"{self.prefix}{index}".encode()
            try:
                code = self.client.publish(self.topic, payload, qos=self.qos)
            except AssertionError:
                return  # its node died (or dropped it): what it acknowledged counts
            if code == 0:
                self.acknowledged.append(payload)
            elif code == 0x10:
                self.unmatched += 1
            index += 1
            self.stopping.wait(self.pause)  # a steady rate, not a flood to catch up with

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)
        self.client.client.loop_stop()


def _has_all(subscriber: Subscriber, payloads: set[bytes]) -> bool:
    return payloads <= set(subscriber.received)


def _adopted(redis: RedisServer, node: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not redis.call("EXISTS", f"mq:adopted:{{{node}}}"):
        assert time.monotonic() < deadline, f"node {node} was not adopted"
        time.sleep(0.02)  # adoption follows a TTL in Redis: nothing to wait on


class Trial:
    """One node to kill, holding a persistent subscriber and a publisher, while a publisher
    on a surviving node goes on; its subscriber resumes on another survivor."""

    def __init__(self, redis: RedisServer, number: int, qos: int, feeding: BrokerProcess,
                 options: tuple[str, ...]) -> None:
        self.name, self.qos = f"v{number}", qos
        self.victim = BrokerProcess("--cluster", redis.url, "--node-id", self.name,
                                    "--node-ttl", NODE_TTL, *options)
        self.topic = _name(f"torture{number}")
        self.subscriber = Subscriber(_name(f"sub{number}"))
        self._feeding = feeding

    def start(self) -> None:
        self.victim.wait_for_log(f"node {self.name} joined")
        self.victim.discard_log()
        self.subscriber.connect(self.victim)
        self.subscriber.subscribe(self.topic, self.qos)
        self.local = Feeder(self.victim, self.topic, self.qos, "v")
        self.remote = Feeder(self._feeding, self.topic, self.qos, "s")
        _wait_for_route(self.remote.client, self.topic)
        self.local.start()
        self.remote.start()

    def kill(self) -> None:
        self.victim.proc.kill()
        self.victim.proc.wait()
        self.local.stopping.set()  # it waits in vain for its last acknowledgement: not joined
        self.subscriber.close()

    def check(self) -> None:
        """Every message acknowledged to either publisher arrived; QoS 2 once."""
        self.remote.stop()
        acknowledged = set(self.local.acknowledged) | set(self.remote.acknowledged)
        assert len(self.remote.acknowledged) > 10
        self.subscriber.pump(until=partial(_has_all, self.subscriber, acknowledged))
        assert self.remote.unmatched == 0  # the route never went missing
        if self.qos == 2:
            received = self.subscriber.received
            assert len(received) == len(set(received)), f"{self.name}: a QoS 2 message twice"
        self.subscriber.close()
        self.remote.client.client.disconnect()
        self.local.client.client.loop_stop()


@pytest.mark.slow
def test_kill_9_torture_every_acknowledged_message_is_delivered_qos_2_once(
        redis: RedisServer, tmp_path: Path) -> None:
    """Ten trials, two at a time (one at QoS 1, one at QoS 2), each node killed with SIGKILL
    at a random moment; the subscribers come back after the adoption, or at a random moment
    before the dead node's TTL has run out."""
    rng = random.Random(19)
    # Queues deep enough for what comes while the subscriber is away; a short TTL, and a
    # CONNECT that waits half a second for a dead node's answer.
    deep = ("--max-memory-queued-messages", "100000", "--node-ttl", "2.0")
    config = tmp_path / "survivor.toml"
    config.write_text("[cluster]\ntakeover_timeout = 0.5\n")
    with start_node(redis, "s1", *deep) as s1, \
            start_node(redis, "s2", "-c", str(config), "--port", "0", *deep) as s2:
        for node in (s1, s2):
            node.discard_log()
        for pair in range(5):
            early = pair % 2 == 1
            trials = [Trial(redis, 2 * pair + qos - 1, qos, s1, deep) for qos in (1, 2)]
            for trial in trials:
                trial.start()
            for trial in trials:
                trial.subscriber.pump(rng.uniform(0.05, 0.3))
                trial.kill()
            if early:  # the moment of the trial, not a synchronisation
                time.sleep(rng.uniform(0.0, 0.8))
            for trial in trials:
                if not early:
                    _adopted(redis, trial.name)
                assert trial.subscriber.connect(s2).session_present
                if early:
                    assert not redis.call("EXISTS", f"mq:adopted:{{{trial.name}}}")
                trial.subscriber.pump(0.2)
            for trial in trials:
                if early:
                    _adopted(redis, trial.name)
                trial.check()


def test_a_node_paused_past_its_ttl_cannot_write_to_the_sessions_adopted_meanwhile(
        redis: RedisServer) -> None:
    with start_node(redis, "z1") as z1, start_node(redis, "z2") as z2:
        z2.discard_log()
        epoch = redis.call("GET", "mq:node:{z1}").split(b"|", 1)[0].decode()
        client_id = _name("paused")
        subscriber = Subscriber(client_id)
        subscriber.connect(z1)
        subscriber.subscribe("z/kept", 1)
        z1.proc.send_signal(signal.SIGSTOP)
        try:
            _adopted(redis, "z1")
            base, subs, _, _ = session_keys(client_id)
            assert redis.call("HGET", base, "owner").startswith(b"z2|")
            # Sent while z1 sleeps: it reads this first when it wakes.
            assert subscriber.conn is not None
            subscriber.conn.send(Subscribe(packet_id=7, subscriptions=[
                Subscription(topic_filter="z/sneaked", qos=1)]))
        finally:
            z1.proc.send_signal(signal.SIGCONT)
        z1.wait_for_log(f"not written: {client_id}")  # the fence refused its write
        z1.wait_for_log("taken for dead")
        closing = subscriber.conn.expect_closed()
        assert not [p for p in closing if isinstance(p, Suback)]  # never acknowledged
        assert redis.call("HKEYS", subs) == [b"z/kept"]
        assert redis.call("HGET", base, "owner").startswith(b"z2|")
        # The script itself refuses the old owner, whatever it writes.
        refused = redis.call("EVALSHA", WRITE.sha, 4, *session_keys(client_id),
                             f"z1|{epoch}", "+", "z/other", b"\x95\x01\xc2\xc2\x00\xc0")
        assert refused[0] == 0
        z1.wait_for_log(r"node z1 joined \(epoch (?!" + epoch + r"\b)")  # a new epoch
        assert subscriber.connect(z2).session_present
        subscriber.close()


def test_sessions_and_their_queues_outlive_a_redis_restart(redis: RedisServer) -> None:
    with start_node(redis, "r1") as r1, start_node(redis, "r2") as r2:
        topic = _name("restart")
        subscriber = Subscriber(_name("survivor"))
        subscriber.connect(r1)
        subscriber.subscribe(topic, 1)
        subscriber.close()
        publisher = _publisher(r2)
        _wait_for_route(publisher, topic)
        for index in range(20):
            assert publisher.publish(topic, str(index).encode(), qos=1) == 0
        publisher.disconnect()
        redis.stop()
        redis.start()
        for node in (r1, r2):
            node.wait_for_log("rejoined", timeout=15)
        assert subscriber.connect(r2).session_present
        subscriber.pump(until=lambda: len(subscriber.received) >= 20)
        assert subscriber.received == [str(index).encode() for index in range(20)]
        subscriber.close()


def _kill(node: BrokerProcess) -> None:
    node.proc.kill()
    node.proc.wait()


def _early_node(redis: RedisServer, node_id: str, tmp_path: Path) -> BrokerProcess:
    """A node with a TTL that leaves time to come back before it runs out (a CONNECT waits
    half a second for a dead node's answer, not three)."""
    config = tmp_path / f"{node_id}.toml"
    config.write_text("[cluster]\ntakeover_timeout = 0.5\n")
    return start_node(redis, node_id, "-c", str(config), "--port", "0", "--node-ttl",
                      EARLY_TTL)


EARLY_TTL = "3.0"


@pytest.mark.parametrize(("moment", "qos"), [(0.0, 1), (0.4, 2), (0.7, 1)])  # of the TTL
def test_a_session_resumed_before_its_dead_node_is_adopted_gets_what_was_routed_there(
        redis: RedisServer, tmp_path: Path, moment: float, qos: int) -> None:
    """The order a user tries: the subscriber's node is killed, messages are acknowledged on
    a survivor (into the dead node's stream), and the subscriber comes back on the survivor
    at once, before the dead node's TTL ran out and it was adopted."""
    with _early_node(redis, "d1", tmp_path) as dead, \
            _early_node(redis, "d2", tmp_path) as survivor:
        topic = _name("early")
        subscriber = Subscriber(_name("victim"))
        subscriber.connect(dead)
        subscriber.subscribe(topic, qos)
        assert subscriber.conn is not None
        subscriber.conn.send(Disconnect())
        subscriber.close()
        publisher = _publisher(survivor)
        _wait_for_route(publisher, topic)
        _kill(dead)
        sent = [f"m{index}".encode() for index in range(3)]
        for payload in sent:
            assert publisher.publish(topic, payload, qos=qos) == 0
        # The moment of the trial (not a synchronisation): how long the client stays away.
        time.sleep(moment * float(EARLY_TTL))
        assert subscriber.connect(survivor).session_present
        assert not redis.call("EXISTS", "mq:adopted:{d1}"), "came back too late for the trial"
        after = [f"a{index}".encode() for index in range(3)]  # while the dead node's routes last
        for payload in after:
            assert publisher.publish(topic, payload, qos=qos) == 0
        subscriber.pump(until=lambda: _has_all(subscriber, {*sent, *after}))
        _adopted(redis, "d1")
        survivor.wait_for_log("stream of node d1 is drained")
        subscriber.pump(0.3)  # nothing more comes: once each
        assert sorted(subscriber.received) == sorted([*sent, *after])
        subscriber.close()
        publisher.disconnect()


def test_a_session_resumed_on_a_third_node_gets_what_the_dead_nodes_adopter_drains(
        redis: RedisServer, tmp_path: Path) -> None:
    """Resumed on one survivor before the dead node is adopted by another: the adopter passes
    on what the dead node's stream held for it."""
    with _early_node(redis, "t1", tmp_path) as dead, \
            _early_node(redis, "t2", tmp_path) as adopter:
        # A long TTL: its heartbeat (a fifth of it) rarely sees the dead node first.
        config = tmp_path / "t3.toml"
        config.write_text("[cluster]\ntakeover_timeout = 0.5\n")
        with start_node(redis, "t3", "-c", str(config), "--port", "0", "--node-ttl",
                        "30") as resumer:
            topic = _name("third")
            subscriber = Subscriber(_name("victim"))
            subscriber.connect(dead)
            subscriber.subscribe(topic, 2)
            assert subscriber.conn is not None
            subscriber.conn.send(Disconnect())
            subscriber.close()
            publishers = [_publisher(adopter), _publisher(resumer)]
            for publisher in publishers:
                _wait_for_route(publisher, topic)
            _kill(dead)
            sent = [f"{index}".encode() for index in range(6)]
            for index, payload in enumerate(sent):
                assert publishers[index % 2].publish(topic, payload, qos=2) == 0
            assert subscriber.connect(resumer).session_present
            after = [f"after{index}".encode() for index in range(6)]
            for index, payload in enumerate(after):
                assert publishers[index % 2].publish(topic, payload, qos=2) == 0
            subscriber.pump(until=lambda: _has_all(subscriber, {*sent, *after}))
            _adopted(redis, "t1")
            adopter.wait_for_log("stream of node t1 is drained")
            subscriber.pump(0.3)
            assert sorted(subscriber.received) == sorted([*sent, *after])  # once each
            subscriber.close()
            for publisher in publishers:
                publisher.disconnect()


def test_a_node_restarted_under_its_id_passes_on_what_it_held_for_a_session_resumed_elsewhere(
        redis: RedisServer, tmp_path: Path) -> None:
    """Killed, its subscriber resumed elsewhere, then started again at once under its id
    (before its TTL ran out, so nobody adopts it): its stream is its own again, and what it
    holds for the session that left goes to the session's node."""
    with _early_node(redis, "b1", tmp_path) as first, \
            _early_node(redis, "b2", tmp_path) as survivor:
        topic = _name("back")
        subscriber = Subscriber(_name("victim"))
        subscriber.connect(first)
        subscriber.subscribe(topic, 1)
        assert subscriber.conn is not None
        subscriber.conn.send(Disconnect())
        subscriber.close()
        publisher = _publisher(survivor)
        _wait_for_route(publisher, topic)
        _kill(first)
        sent = [f"m{index}".encode() for index in range(3)]
        for payload in sent:
            assert publisher.publish(topic, payload, qos=1) == 0
        assert subscriber.connect(survivor).session_present
        with _early_node(redis, "b1", tmp_path) as again:
            again.wait_for_log("passes on what its stream holds for 1 session")
            subscriber.pump(until=lambda: _has_all(subscriber, set(sent)))
            assert not redis.call("EXISTS", "mq:adopted:{b1}")
        subscriber.pump(0.3)
        assert sorted(subscriber.received) == sorted(sent)
        subscriber.close()
        publisher.disconnect()
