"""The admin API: every endpoint, its errors, the token, pagination, durable deletions, and
the HTTP side's own limits (headers, bodies, keep-alive, malformed requests)."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from mqlite.broker.config.listener_config import ListenerConfig
from mqlite.protocol import Disconnect, Puback, Publish, ReasonCode

from ..broker.helpers import PahoClient, RawClient, wait_until
from .http_helpers import get_json, request, start

TOKEN = "s3cret-token-for-tests"


def rows(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def test_clients_list_detail_and_disconnect() -> None:
    broker = start()
    try:
        v5 = RawClient(broker.addresses["tcp"], 5)
        v5.connect("five", username="ops")
        status, body = get_json(broker, "/api/v1/clients")
        assert status == 200 and body["next"] is None
        [client] = body["clients"]
        assert client["id"] == "five" and client["protocol"] == "5.0"
        assert client["username"] == "ops" and client["listener"] == "tcp"
        assert get_json(broker, "/api/v1/clients/five")[1]["peer"] == client["peer"]
        assert get_json(broker, "/api/v1/clients/ghost") == (
            404, {"error": "no client 'ghost' is connected"})
        assert get_json(broker, "/api/v1/clients/five/disconnect")[0] == 405
        status, body = get_json(broker, "/api/v1/clients/five/disconnect", method="POST")
        assert (status, body) == (200, {"disconnected": "five"})
        packets = v5.expect_closed()
        assert [p.reason_code for p in packets if isinstance(p, Disconnect)] == [
            ReasonCode.ADMINISTRATIVE_ACTION]
    finally:
        broker.stop()


def test_sessions_pages_details_and_durable_delete(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    broker = start(db=str(db))
    try:
        for number in range(25):
            client = RawClient(broker.addresses["tcp"])
            client.connect(f"s{number:02d}", clean_start=False)
            client.close()
        keeper = PahoClient(broker.addresses["tcp"], client_id="keeper", clean=False)
        keeper.connect()
        keeper.subscribe("keep/#", qos=1)
        wait_until(lambda: len(broker.core.sessions) == 26)
        seen: list[str] = []
        cursor = None
        while True:
            query = "?limit=10" + (f"&after={cursor}" if cursor else "")
            status, body = get_json(broker, "/api/v1/sessions" + query)
            assert status == 200 and len(body["sessions"]) <= 10
            seen += [session["id"] for session in body["sessions"]]
            cursor = body["next"]
            if cursor is None:
                break
        assert seen == sorted(seen) and len(seen) == 26
        status, detail = get_json(broker, "/api/v1/sessions/keeper")
        assert detail["online"] is True and "keep/#" in detail["subscriptions"]
        assert get_json(broker, "/api/v1/sessions?limit=0")[0] == 400
        assert get_json(broker, "/api/v1/sessions?limit=x")[0] == 400
        assert get_json(broker, "/api/v1/sessions/nope")[0] == 404

        status, body = get_json(broker, "/api/v1/sessions/keeper", method="DELETE")
        assert (status, body) == (200, {"deleted": "keeper"})
        # The answer came after the commit: the row is gone from the file already.
        assert rows(db, "SELECT client_id FROM sessions WHERE client_id = 'keeper'") == []
        assert "keeper" not in broker.core.sessions
        keeper.wait("disconnect")
    finally:
        broker.stop()


def test_subscriptions_and_retained(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    broker = start(db=str(db))
    try:
        client = PahoClient(broker.addresses["tcp"], client_id="c")
        client.connect()
        for topic_filter in ("sensors/+/temp", "sensors/#", "other"):
            client.subscribe(topic_filter, qos=1)
        for topic in ("sensors/a/temp", "sensors/b/temp", "other"):
            client.publish(topic, b"v", qos=1, retain=True)
        status, body = get_json(broker, "/api/v1/subscriptions?filter=sensors/%23")
        assert [row["filter"] for row in body["subscriptions"]] == ["sensors/#",
                                                                   "sensors/+/temp"]
        assert get_json(broker, "/api/v1/subscriptions?filter=a/%23/b")[0] == 400
        status, body = get_json(broker, "/api/v1/retained?filter=sensors/%2B/temp")
        assert [row["topic"] for row in body["retained"]] == ["sensors/a/temp",
                                                             "sensors/b/temp"]
        status, body = get_json(broker, "/api/v1/retained/sensors/a/temp", method="DELETE")
        assert (status, body) == (200, {"deleted": "sensors/a/temp"})
        assert rows(db, "SELECT topic FROM retained WHERE topic = 'sensors/a/temp'") == []
        assert get_json(broker, "/api/v1/retained/sensors/a/temp", method="DELETE")[0] == 404
        assert get_json(broker, "/api/v1/retained/sensors/b/temp")[0] == 405
    finally:
        broker.stop()


def test_the_token_guards_all_but_metrics_health_and_the_page() -> None:
    broker = start(admin_token=TOKEN)
    try:
        status, headers, _ = request(broker, "GET", "/api/v1/stats")
        assert status == 401 and headers["www-authenticate"].startswith("Bearer")
        assert get_json(broker, "/api/v1/stats", token="wrong")[0] == 403
        assert get_json(broker, "/api/v1/stats", token=TOKEN)[0] == 200
        for open_path in ("/metrics", "/health", "/"):
            assert request(broker, "GET", open_path)[0] == 200
        assert get_json(broker, "/api/v1/clients/x/disconnect", method="POST")[0] == 401
    finally:
        broker.stop()


def test_without_a_token_changes_need_a_loopback_listener() -> None:
    listeners = [ListenerConfig(port=0, name="tcp"),
                 ListenerConfig(type="http", host="0.0.0.0", port=0, name="http")]
    broker = start(listeners=listeners)
    try:
        raw = RawClient(broker.addresses["tcp"])
        raw.connect("c")
        assert get_json(broker, "/api/v1/clients")[0] == 200  # reading is allowed
        status, body = get_json(broker, "/api/v1/clients/c/disconnect", method="POST")
        assert status == 403 and "admin_token" in body["error"]
        raw.ping()  # still connected
    finally:
        broker.stop()


def test_unknown_paths_and_methods() -> None:
    broker = start()
    try:
        assert get_json(broker, "/api/v2/stats")[0] == 404
        assert get_json(broker, "/api/v1/nothing")[0] == 404
        assert get_json(broker, "/metrics", method="POST")[0] == 405
        status, headers, page = request(broker, "GET", "/")
        assert status == 200 and b"<title>mqlite status</title>" in page
        assert "default-src 'self'" in headers["content-security-policy"]
    finally:
        broker.stop()


def raw_http(broker: object, data: bytes) -> bytes:
    _host, port = broker.addresses["http"]  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize(("data", "status"), [
    (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: y\r\n" % n for n in range(100)) + b"\r\n", b"431"),
    (b"POST /api/v1/stats HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
     + bytes(100_000), b"413"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n", b"431"),
])
def test_bad_requests_get_an_answer_and_a_close(data: bytes, status: bytes) -> None:
    broker = start()
    try:
        answer = raw_http(broker, data)
        assert answer.split(b" ")[1] == status, answer[:200]
        assert get_json(broker, "/health")[0] == 200  # the broker is fine
    finally:
        broker.stop()


def test_keep_alive_and_pipelining() -> None:
    broker = start()
    try:
        two = (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = raw_http(broker, two)
        assert answer.count(b"HTTP/1.1 200") == 2
    finally:
        broker.stop()


def test_http_connections_are_bounded() -> None:
    listeners = [ListenerConfig(port=0, name="tcp"),
                 ListenerConfig(type="http", port=0, name="http", max_connections=2)]
    broker = start(listeners=listeners)
    try:
        _host, port = broker.addresses["http"]
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        for sock in held:  # both are served (kept alive)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        third = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert third.recv(100) == b""  # closed at accept
        for sock in (*held, third):
            sock.close()
    finally:
        broker.stop()


def test_a_publish_is_counted_in_stats() -> None:
    broker = start()
    try:
        raw = RawClient(broker.addresses["tcp"])
        raw.connect("p")
        raw.send(Publish(topic="t", payload=b"x", qos=1, packet_id=1))
        assert isinstance(raw.receive(), Puback)
        _status, stats = get_json(broker, "/api/v1/stats")
        assert stats["messages_received"]["1"] == 1
        assert stats["messages_dropped"]["no_subscribers"] == 1
    finally:
        broker.stop()


def test_metrics_stats_and_the_retained_list_count_retained_messages_alike() -> None:
    """The broker's own $SYS tree is retained too (for late subscribers), but it is not what
    clients retained: /metrics, /api/v1/stats and /api/v1/retained all leave it out."""
    broker = start(sys_interval=0.2)
    try:
        client = PahoClient(broker.addresses["tcp"], client_id="keeper")
        client.connect()
        client.subscribe("$SYS/broker/uptime")
        client.message()  # the $SYS tree is out, retained
        for topic in ("kept/a", "kept/b"):
            client.publish(topic, b"v", qos=1, retain=True)
        listed = get_json(broker, "/api/v1/retained")[1]["retained"]
        assert [row["topic"] for row in listed] == ["kept/a", "kept/b"]
        assert get_json(broker, "/api/v1/stats")[1]["retained_messages"] == 2
        _, _, metrics = request(broker, "GET", "/metrics")
        assert "\nmqlite_retained_messages 2\n" in metrics.decode()
        assert len(broker.core.retained) > 2  # $SYS's are kept, counted apart
    finally:
        broker.stop()
