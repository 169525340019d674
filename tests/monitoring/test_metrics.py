"""GET /metrics parsed by prometheus_client: the counters move by what happened, the gauges
read the state, refusals and drops carry their reasons; and GET /health."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mqlite.broker import SQLiteStore
from mqlite.protocol import Connect, Puback, Publish

from ..broker.helpers import PahoClient, RawClient, wait_until
from .http_helpers import get_json, request, start


def scrape(broker: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, headers, body = request(broker, "GET", "/metrics")  # type: ignore[arg-type]
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_counters_move_by_what_happened() -> None:
    broker = start()
    try:
        before = scrape(broker)
        subscriber = PahoClient(broker.addresses["tcp"], client_id="sub")
        subscriber.connect()
        subscriber.subscribe("m/#", qos=1)
        publisher = RawClient(broker.addresses["tcp"])
        publisher.connect("pub")
        count = 25
        for number in range(count):
            publisher.send(Publish(topic="m/x", payload=b"%04d" % number, qos=1,
                                   packet_id=number + 1))
            assert isinstance(publisher.receive(), Puback)
        for _ in range(count):
            subscriber.message()
        publisher.send(Publish(topic="nobody/listens", payload=b"x"))
        publisher.ping()
        after = scrape(broker)

        def moved(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after[key] - before.get(key, 0.0)

        assert moved("mqlite_messages_received_total", qos="1") == count
        assert moved("mqlite_messages_received_total", qos="0") == 1
        assert moved("mqlite_messages_sent_total", qos="1") == count
        assert moved("mqlite_messages_dropped_total", reason="no_subscribers") == 1
        assert moved("mqlite_connections_total") == 2
        assert moved("mqlite_bytes_received_total") >= count * (2 + 2 + 3 + 2 + 4)
        assert moved("mqlite_bytes_sent_total") >= count * (2 + 2 + 3 + 2 + 4)
        assert after[("mqlite_clients_connected", (("listener", "tcp"),))] == 2
        assert after[("mqlite_sessions", (("state", "online"),))] == 2
        assert after[("mqlite_subscriptions", ())] == 1
        assert after[("mqlite_loop_turn_seconds_count", ())] > before.get(
            ("mqlite_loop_turn_seconds_count", ()), 0)
        assert after[("process_resident_memory_bytes", ())] > 1_000_000
        assert after[("process_open_fds", ())] >= 4
    finally:
        broker.stop()


def test_refusals_and_queues_are_reported() -> None:
    broker = start(allow_anonymous=False)
    try:
        raw = RawClient(broker.addresses["tcp"], 5)
        raw.send(Connect(client_id="nobody", protocol_version=5))
        raw.expect_closed()
        samples = scrape(broker)
        assert samples[("mqlite_connections_refused_total",
                        (("reason", "not_authorized"),))] == 1
    finally:
        broker.stop()


def test_queued_messages_and_the_deepest_queue(tmp_path: Path) -> None:
    broker = start(db=str(tmp_path / "m.db"))
    try:
        away = PahoClient(broker.addresses["tcp"], client_id="away", clean=False)
        away.connect()
        away.subscribe("q/#", qos=1)
        away.disconnect()
        wait_until(lambda: broker.core.sessions.by_id["away"].connection is None)
        publisher = PahoClient(broker.addresses["tcp"], client_id="pub")
        publisher.connect()
        for number in range(7):
            publisher.publish("q/x", b"%d" % number, qos=1)
        samples = scrape(broker)
        assert samples[("mqlite_queued_messages", ())] == 7
        assert samples[("mqlite_deepest_queue_messages", ())] == 7
        assert samples[("mqlite_sessions", (("state", "offline"),))] == 1
        assert samples[("mqlite_store_commits_total", ())] >= 1
        assert samples[("mqlite_store_commit_seconds_count", ())] >= 1
        status, stats = get_json(broker, "/api/v1/stats")
        assert status == 200 and stats["deepest_queues"] == [["away", 7]]
    finally:
        broker.stop()


def test_health_reports_a_failed_commit_until_one_succeeds(tmp_path: Path) -> None:
    """A real SQLITE_FULL (a size cap on the database) fails a commit: 503 with the reason."""
    store = SQLiteStore(str(tmp_path / "full.db"), max_size=256 * 1024)
    broker = start(store=store)
    try:
        assert get_json(broker, "/health") == (200, {"status": "ok"})
        publisher = RawClient(broker.addresses["tcp"])
        publisher.connect("big")
        publisher.send(Publish(topic="big", payload=os.urandom(512 * 1024), qos=1,
                               packet_id=1, retain=True))
        publisher.expect_closed()  # not acknowledged: the broker could not store it
        status, body = get_json(broker, "/health")
        assert status == 503 and body["status"] == "failing"
        assert "store failed its last commit" in body["reason"]
        small = RawClient(broker.addresses["tcp"])
        small.connect("small")
        small.send(Publish(topic="small", payload=b"fits", qos=1, packet_id=1, retain=True))
        assert isinstance(small.receive(), Puback)
        assert get_json(broker, "/health") == (200, {"status": "ok"})
    finally:
        broker.stop()
