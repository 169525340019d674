"""What operators put next to a broker: every metric the Grafana dashboard and the alert rules
query is exported by a running broker (alone with a bridge, and as a cluster node), every
metric exported is in the generated reference, and the rules pass promtool's check where
Debian's prometheus package provides it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlite.broker import BridgeConfig, BridgeTopic, Broker, ClusterConfig
from mqlite.broker.http.endpoints import ENDPOINTS
from mqlite.protocol import Publish
from mqlite.testing import TestClient, broker

from ..broker.helpers import RawClient, wait_until
from ..cluster.conftest import RedisServer
from .http_helpers import LISTENERS, request

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "contrib" / "grafana" / "mqlite.json"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\b((?:mqlite|process)_[a-z0-9_]+)")


def queried(text: str) -> set[str]:
    """The metric families an expression names (a histogram's series by its family)."""
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRIC.findall(text)}


def dashboard_queries() -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    exprs += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return set().union(*(queried(e) for e in exprs))


def alert_queries() -> set[str]:
    return queried("\n".join(line for line in ALERTS.read_text().splitlines()
                             if line.strip().startswith("expr:")))


def exported(broker: Broker) -> set[str]:
    status, _, body = request(broker, "GET", "/metrics")
    assert status == 200
    return {line.split()[2] for line in body.decode().splitlines()
            if line.startswith("# TYPE ")}


@pytest.fixture
def lone_broker() -> Iterator[Broker]:
    """A broker with an http listener and a bridge (to a port where nothing listens)."""
    broker = Broker(listeners=LISTENERS, sys_interval=0, bridges=[BridgeConfig(
        name="up", addresses=("127.0.0.1:9",), restart_timeout=(5.0, 5.0),
        topics=(BridgeTopic(pattern="out/#", direction="out", qos=1),))])
    broker.start()
    yield broker
    broker.stop()


def test_the_dashboard_queries_only_what_a_broker_exports(lone_broker: Broker,
                                                          tmp_path: Path) -> None:
    names = exported(lone_broker)
    redis = RedisServer(tmp_path)
    node = Broker(listeners=LISTENERS, sys_interval=0,
                  cluster=ClusterConfig(url=redis.url, node_id="dash-1", node_ttl=1.0))
    node.start()
    try:
        cluster = node.core.cluster
        wait_until(lambda: cluster.available, what="the node joined")
        names |= exported(node)
    finally:
        node.stop()
        redis.kill()
    reference = (ROOT / "docs" / "metrics.md").read_text()
    assert {name for name in names if f"| `{name}` |" not in reference} == set()
    assert dashboard_queries() - names == set()
    assert alert_queries() - names - {"up"} == set()
    assert {"mqlite_healthy", "mqlite_store_failing", "mqlite_cluster_available",
            "mqlite_bridge_connected"} <= dashboard_queries()


def test_the_health_gauges_follow_health(lone_broker: Broker) -> None:
    _, _, body = request(lone_broker, "GET", "/metrics")
    text = body.decode()
    assert "\nmqlite_healthy 1\n" in text and "\nmqlite_store_failing 0\n" in text


def test_the_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: CI installs Debian's prometheus package")
        pytest.skip("needs promtool (apt-get install prometheus)")
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_a_failing_store_shows_in_the_gauges() -> None:
    with broker(listeners=LISTENERS) as test_broker:
        with TestClient(test_broker, client_id="keeper", clean=False) as keeper:
            keeper.subscribe("jobs/#", qos=1)
        test_broker.wait_for_client("keeper", connected=False)
        with test_broker.store_fails(), TestClient(test_broker, client_id="producer") as producer:
            producer.client.publish("jobs/1", b"x", qos=1)  # its turn cannot be stored
            wait_until(lambda: b"\nmqlite_store_failing 1\n" in request(
                test_broker.broker, "GET", "/metrics")[2], what="the failure in /metrics")
            text = request(test_broker.broker, "GET", "/metrics")[2].decode()
            assert "\nmqlite_healthy 0\n" in text


def test_every_documented_endpoint_answers(lone_broker: Broker) -> None:
    """The admin API reference's table (broker/http/endpoints.py), called on a live broker:
    each path with each of its methods is routed (no 404 for the path, no 405)."""
    client = RawClient(lone_broker.address)
    client.connect(client_id="probe", clean_start=False)
    client.send(Publish(topic="state/door", payload=b"open", qos=0, retain=True))
    wait_until(lambda: lone_broker.core.retained.applications == 1, what="a retained message")
    sample = {"{id}": "probe", "{topic}": "state/door"}
    answered = {}
    for endpoint in ENDPOINTS:
        if endpoint.plugin == "cluster":
            continue  # cluster nodes only: tests/cluster calls them
        path = endpoint.path
        for placeholder, value in sample.items():
            path = path.replace(placeholder, value)
        for method in endpoint.methods:
            answered[f"{method} {endpoint.path}"] = request(lone_broker, method, path)[0]
    assert {call: status for call, status in answered.items() if status in (404, 405)} == {}
    assert answered["DELETE /api/v1/retained/{topic}"] == 200
    assert answered["POST /api/v1/clients/{id}/disconnect"] == 200
    client.close()
