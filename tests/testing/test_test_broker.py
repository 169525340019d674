"""mqlite.testing's broker object: what it records, its views, publishing from the broker side,
and its failure messages. Real clients (paho-mqtt and mqlite's) on real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from paho.mqtt.packettypes import PacketTypes

from mqlite.protocol import EMPTY_PROPERTIES
from mqlite.testing import Published, TestBroker, TestClient, broker

from ..broker.helpers import PahoClient, props


@pytest.fixture
def test_broker() -> Iterator[TestBroker]:
    with broker() as started:
        yield started


def test_it_unpacks_to_host_and_port_and_serves_on_loopback(test_broker: TestBroker) -> None:
    host, port = test_broker
    assert (host, port) == test_broker.address == (test_broker.host, test_broker.port)
    assert host == "127.0.0.1" and port > 0
    socket.create_connection((host, port), timeout=5).close()


@pytest.mark.parametrize("version", [4, 5], ids=["3.1.1", "5.0"])
def test_messages_hold_what_a_paho_client_published(test_broker: TestBroker,
                                                    version: int) -> None:
    app = PahoClient(test_broker.address, client_id="sensor", version=version)
    app.connect()
    extra = props(PacketTypes.PUBLISH, UserProperty=[("unit", "C")]) if version == 5 else None
    app.publish("sensors/t", b"21.5", qos=1, retain=True, properties=extra)
    [message] = test_broker.wait_for("sensors/#")
    assert (message.topic, message.payload, message.qos, message.retain, message.client_id) == \
        ("sensors/t", b"21.5", 1, True, "sensor")
    if version == 5:
        assert message.properties.user_property == (("unit", "C"),)
    assert message.time > 0
    assert test_broker.messages == [message]
    app.disconnect()


def test_wait_for_counts_and_times_out_showing_what_arrived(test_broker: TestBroker) -> None:
    with TestClient(test_broker, client_id="app") as app:
        for n in range(3):
            app.publish(f"a/{n}", str(n), qos=1)
        assert [m.payload for m in test_broker.wait_for("a/+", count=3)] == [b"0", b"1", b"2"]
        with pytest.raises(TimeoutError) as failure:
            test_broker.wait_for("b/#", timeout=0.2)
    text = str(failure.value)
    assert "0 of 1 message(s) on 'b/#'" in text and "'a/2' b'2' qos=1 from 'app'" in text


def test_assertion_helpers_say_what_the_broker_accepted(test_broker: TestBroker) -> None:
    with TestClient(test_broker, client_id="app") as app:
        app.publish("status", "up", qos=1)
    assert test_broker.assert_published("status", "up")[0].payload == b"up"
    with pytest.raises(AssertionError, match=r"found 0;(.|\n)*'status' b'up'"):
        test_broker.assert_published("status", "down")
    with pytest.raises(AssertionError, match="expected 2 message"):
        test_broker.assert_published("status", count=2)
    with pytest.raises(AssertionError, match="expected no message on '#', found:\n  'status'"):
        test_broker.assert_not_published("#")
    test_broker.clear()
    test_broker.assert_not_published("#")


def test_clients_and_sessions_views(test_broker: TestBroker) -> None:
    keeper = PahoClient(test_broker.address, client_id="keeper", version=5, clean=False)
    keeper.connect(keepalive=30, session_expiry=600)
    keeper.subscribe("jobs/#", qos=1)
    with TestClient(test_broker, client_id="app") as app:
        [app_view] = [c for c in test_broker.clients() if c.client_id == "app"]
        assert (app_view.protocol_version, app_view.keepalive) == (4, 60)
        keeper.disconnect()
        app.publish("jobs/1", "go", qos=1)
        sessions = {s.client_id: s for s in test_broker.sessions()}
    assert [c.client_id for c in test_broker.clients()] == []
    kept = sessions["keeper"]
    assert (kept.connected, kept.persistent, kept.expiry_interval) == (False, True, 600)
    assert kept.subscriptions == {"jobs/#": 1} and kept.queued == 1


def test_publish_from_the_broker_reaches_subscribers_and_retained_lists_it(
        test_broker: TestBroker) -> None:
    with TestClient(test_broker, client_id="app", version=5) as app:
        app.subscribe("config/#", qos=1)
        test_broker.publish("config/mode", "eco", qos=1, retain=True)
        [received] = app.wait_for("config/#")
    assert (received.topic, received.payload, received.qos) == ("config/mode", b"eco", 1)
    [kept] = test_broker.retained("config/#")
    assert (kept.topic, kept.payload, kept.retain, kept.client_id) == \
        ("config/mode", b"eco", True, None)
    assert test_broker.messages[-1].client_id is None  # the broker's own, recorded too
    assert test_broker.retained("other/#") == []


def test_a_fresh_broker_records_nothing_and_stops_cleanly() -> None:
    test_broker = broker()
    with pytest.raises(RuntimeError, match="not started"):
        test_broker.address  # noqa: B018
    with test_broker:
        assert test_broker.messages == [] and test_broker.clients() == []
    assert repr(test_broker).endswith("stopped>")
    with pytest.raises(RuntimeError, match="not running"):
        test_broker.clients()


def test_published_reads_well_in_failures() -> None:
    message = Published("t", b"x" * 50, 1, True, EMPTY_PROPERTIES, "c", 0.0)
    assert str(message) == f"'t' {b'x' * 40!r}... qos=1 retain from 'c'"


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="clock must be 'real' or 'manual'"):
        broker(clock="fake")
    with broker() as test_broker:
        with pytest.raises(ValueError, match="how must be one of close, reset, silent"):
            test_broker.drop("x", how="gently")
        with pytest.raises(ValueError, match="packet must be one of"):
            test_broker.withhold("x", packet="PINGREQ")
        with pytest.raises(LookupError, match="no client 'ghost' is connected"):
            test_broker.drop("ghost")
        with pytest.raises(RuntimeError, match="clock='manual'"):
            test_broker.advance(1)
