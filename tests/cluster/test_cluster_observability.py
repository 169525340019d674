"""What an operator sees of cluster mode: /api/v1/cluster, /metrics, /health."""

from __future__ import annotations

from mqlite.broker import Broker
from mqlite.broker.cluster_config import ClusterConfig

from ..broker.helpers import PahoClient, wait_until
from ..monitoring.http_helpers import LISTENERS, get_json, request
from .conftest import RedisServer


def _node(redis: RedisServer, node_id: str) -> Broker:
    broker = Broker(listeners=LISTENERS, sys_interval=0,
                    cluster=ClusterConfig(url=redis.url, node_id=node_id, node_ttl=1.5))
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
