"""What an operator sees of cluster mode: /api/v1/cluster, /metrics, /health."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from mqlite.broker import Broker
from mqlite.broker.cluster.config import ClusterConfig
from mqlite.broker.cluster.wire import pack_forward
from mqlite.broker.message import Message
from mqlite.protocol import Connack, Connect, Properties, Puback, Publish

from ..broker.helpers import PahoClient, RawClient, wait_until
from ..monitoring.http_helpers import LISTENERS, get_json, request
from .conftest import RedisServer


def _node(redis: RedisServer, node_id: str, sys_interval: float = 0) -> Broker:
    broker = Broker(listeners=LISTENERS, sys_interval=sys_interval,
                    cluster=ClusterConfig(url=redis.url, node_id=node_id, node_ttl=1.0))
    broker.start()
    cluster = broker.core.cluster
    assert cluster is not None
    wait_until(lambda: cluster.available, what=f"{node_id} joined")
    return broker


def test_routes_metrics_and_health_of_a_node(redis: RedisServer) -> None:
    first, second = _node(redis, "obs-1"), _node(redis, "obs-2")
    try:
        subscriber = PahoClient(first.addresses["tcp"], client_id="watcher", version=5)
        subscriber.connect()
        subscriber.subscribe("plant/+/temperature", qos=1)
        wait_until(lambda: get_json(second, "/api/v1/cluster")[1]["routes"].get("obs-1")
                   == ["plant/+/temperature"], what="the route seen on obs-2")
        status, view = get_json(second, "/api/v1/cluster")
        assert status == 200 and view["node_id"] == "obs-2" and view["available"]
        assert view["nodes"] == {"obs-1": 1} and "password" not in str(view)
        _, _, body = request(second, "GET", "/metrics")
        text = body.decode()
        assert "mqlite_cluster_available 1" in text
        assert "mqlite_cluster_routes 1" in text
        assert "mqlite_cluster_sessions_adopted_total 0" in text
        count = next(line for line in text.splitlines()
                     if line.startswith("mqlite_cluster_route_propagation_seconds_count"))
        assert int(count.split()[1]) >= 1
        assert request(second, "GET", "/health")[0] == 200
        subscriber.disconnect()

        redis.stop()
        wait_until(lambda: request(second, "GET", "/health")[0] == 503,
                   what="/health failing without Redis")
        assert b"mqlite_cluster_available 0" in request(second, "GET", "/metrics")[2]
        status, body = get_json(first, "/api/v1/cluster")
        assert status == 200 and not body["available"]
    finally:
        first.stop()
        second.stop()


def test_the_cluster_endpoint_is_404_on_a_single_broker() -> None:
    broker = Broker(listeners=LISTENERS, sys_interval=0)
    broker.start()
    try:
        assert get_json(broker, "/api/v1/cluster") == (
            404, {"error": "this broker is not in cluster mode"})
    finally:
        broker.stop()


def test_each_nodes_sys_tree_and_the_cluster_totals(redis: RedisServer) -> None:
    first, second = _node(redis, "sys-1", 0.2), _node(redis, "sys-2", 0.2)
    try:
        watcher = PahoClient(second.addresses["tcp"], client_id="sys-watcher", version=5)
        watcher.connect()
        watcher.subscribe("$SYS/broker/node/sys-1/clients/connected")
        watcher.subscribe("$SYS/broker/cluster/nodes")
        seen: dict[str, bytes] = {}

        def both() -> bool:
            while not watcher.messages.empty():
                message = watcher.messages.get()
                seen[message.topic] = message.payload
            return (seen.get("$SYS/broker/cluster/nodes") == b"2"
                    and "$SYS/broker/node/sys-1/clients/connected" in seen)

        wait_until(both, timeout=10, what="sys-1's tree and the totals on sys-2")
        assert seen["$SYS/broker/node/sys-1/clients/connected"] == b"0"  # nobody on sys-1
        watcher.disconnect()
    finally:
        first.stop()
        second.stop()


def test_a_forwarded_message_that_comes_twice_is_delivered_once(redis: RedisServer) -> None:
    node = _node(redis, "dedup")
    try:
        subscriber = PahoClient(node.addresses["tcp"], client_id="dedup-sub", version=5)
        subscriber.connect()
        subscriber.subscribe("twice", qos=1)
        entry = pack_forward("other|1|42", Message(topic="twice", payload=b"once", qos=1,
                                                   retain=False), [], 0.0)
        for _ in range(2):  # as another node's retry would write it again
            redis.call("XADD", "mq:in:{dedup}", "*", "m", entry)
        assert subscriber.message().payload == b"once"
        subscriber.no_message(within=0.5)
        cluster = node.core.cluster
        assert cluster is not None
        wait_until(lambda: cluster.stats.duplicates == 1, what="one duplicate counted")
        # Handled entries are acknowledged and deleted from the stream.
        wait_until(lambda: redis.call("XLEN", "mq:in:{dedup}") == 0, what="stream emptied")
        subscriber.disconnect()
    finally:
        node.stop()


def test_a_subscriber_filling_its_queue_slows_the_stream_and_loses_nothing(
        redis: RedisServer) -> None:
    """Forwarded messages come in batches; a live subscriber's small queue would overflow
    (drop-oldest), so its node stops reading its stream until the queue drains."""
    small = {"max_memory_queued_messages": 20, "max_inflight": 5}
    receiving = Broker(listeners=LISTENERS, sys_interval=0, **small,
                       cluster=ClusterConfig(url=redis.url, node_id="fc-1", node_ttl=1.0))
    receiving.start()
    sending = _node(redis, "fc-2")
    try:
        node = receiving.core.cluster
        assert node is not None
        wait_until(lambda: node.available, what="fc-1 joined")
        subscriber = RawClient(receiving.addresses["tcp"], version=4)
        subscriber.connect("fc-sub")
        subscriber.subscribe("burst", qos=1)
        publisher = PahoClient(sending.addresses["tcp"], client_id="fc-pub", version=5)
        publisher.client.max_inflight_messages_set(200)
        publisher.connect()
        while publisher.publish("burst", b"probe", qos=1) != 0:
            pass  # until fc-1's route is known on fc-2
        count = 600
        payloads: list[bytes] = []

        def read() -> None:  # from before the burst: a subscriber that keeps up
            while len(payloads) < count:
                payloads.extend(p for p in subscriber.take(1) if p != b"probe")

        reader = threading.Thread(target=read)
        reader.start()
        for index in range(count):
            publisher.client.publish("burst", str(index).encode(), qos=1)
        reader.join(30)
        assert payloads == [str(index).encode() for index in range(count)]
        assert receiving.core.stats.dropped["queue_full"] == 0
        assert node.stats.inbox_pauses > 0
        publisher.disconnect()
    finally:
        receiving.stop()
        sending.stop()


def test_every_nodes_sessions_in_the_admin_api_and_mqlite_sessions(redis: RedisServer) -> None:
    first, second = _node(redis, "look-1"), _node(redis, "look-2")
    try:
        subscriber = PahoClient(first.addresses["tcp"], client_id="looked-at", version=4,
                                clean=False)
        subscriber.connect()
        subscriber.subscribe("look/#", qos=1)
        subscriber.disconnect()  # offline on look-1, its session in Redis
        publisher = PahoClient(first.addresses["tcp"], client_id="look-pub", version=5)
        publisher.connect()
        for index in range(3):
            assert publisher.publish(f"look/{index}", b"x", qos=1) == 0
        publisher.disconnect()
        # Asked on the other node: it reads Redis, and takes nothing from look-1.
        status, body = get_json(second, "/api/v1/cluster/sessions")
        assert status == 200 and body["next"] is None
        (found,) = [s for s in body["sessions"] if s["client_id"] == "looked-at"]
        assert (found["node"], found["online"], found["subscriptions"], found["queued"]) == (
            "look-1", False, 1, 3)
        assert "looked-at" in first.core.sessions and "looked-at" not in second.core.sessions
        listed = subprocess.run(
            [sys.executable, "-m", "mqlite.cli", "sessions", "--cluster", redis.url, "--json"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert listed.returncode == 0, listed.stderr
        (row,) = [s for s in json.loads(listed.stdout) if s["client_id"] == "looked-at"]
        assert (row["node"], row["queued"], row["protocol_version"]) == ("look-1", 3, 4)
        shown = subprocess.run(
            [sys.executable, "-m", "mqlite.cli", "sessions", "show", "looked-at",
             "--cluster", redis.url], capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL)
        assert shown.returncode == 0, shown.stderr
        assert "on node look-1" in shown.stdout and "look/#" in shown.stdout
        assert shown.stdout.count("awaiting") + shown.stdout.count("queued") >= 3
    finally:
        first.stop()
        second.stop()


def test_mqlite_sessions_without_redis_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mqlite.cli", "sessions", "--cluster",
         f"unix://{tmp_path}/nothing.sock"], capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("mqlite sessions: Redis at unix://")


def test_wait_replicas_without_a_replica_acknowledges_nothing_that_needs_redis(
        redis: RedisServer) -> None:
    broker = Broker(listeners=LISTENERS, sys_interval=0, cluster=ClusterConfig(
        url=redis.url, node_id="lonely", node_ttl=1.0, wait_replicas=1, wait_timeout=0.2))
    broker.start()
    try:
        cluster = broker.core.cluster
        assert cluster is not None
        wait_until(lambda: cluster.available, what="lonely joined")
        # A retained message is the cluster's, in Redis: no replica confirmed it.
        publisher = RawClient(broker.addresses["tcp"], version=5)
        publisher.connect("needs-a-replica")
        publisher.send(Publish(topic="kept", payload=b"x", qos=1, retain=True, packet_id=1))
        assert not [p for p in publisher.expect_closed() if isinstance(p, Puback)]
        # A persistent session is written to Redis too: not even its CONNACK goes out.
        subscriber = RawClient(broker.addresses["tcp"], version=5)
        subscriber.send(Connect(client_id="durable", protocol_version=5, clean_start=False,
                                properties=Properties(session_expiry_interval=60)))
        assert not [p for p in subscriber.expect_closed() if isinstance(p, Connack)]
    finally:
        broker.stop()
