"""Faults on demand, each driven through real clients (paho-mqtt, mqlite's, aiomqtt) to what
they visibly do: reconnect, resend with DUP, see a refusal, lose nothing across a crash."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

import mqlite.client as mqlite_client
from mqlite.testing import TestBroker, TestClient, broker

from ..broker.helpers import PahoClient, wait_until

VERSIONS = pytest.mark.parametrize("version", [4, 5], ids=["3.1.1", "5.0"])


@pytest.fixture
def test_broker() -> Iterator[TestBroker]:
    with broker() as started:
        yield started


def persistent_paho(test_broker: TestBroker, client_id: str, version: int,
                    will: str | None = None) -> PahoClient:
    """A paho client with a session that outlives its connection, reconnecting on its own
    within a tenth of a second."""
    app = PahoClient(test_broker.address, client_id=client_id, version=version, clean=False)
    app.client.reconnect_delay_set(0.05, 0.1)
    if will is not None:
        app.client.will_set(will, b"offline", qos=1)
    app.connect(session_expiry=600 if version == 5 else None)
    return app


@VERSIONS
@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_dropped_connection_publishes_the_will_and_paho_reconnects(
        test_broker: TestBroker, version: int, how: str) -> None:
    with TestClient(test_broker, client_id="watcher") as watcher:
        watcher.subscribe("status/#", qos=1)
        app = persistent_paho(test_broker, "app", version, will="status/app")
        test_broker.drop("app", how=how)
        app.wait("disconnect")
        [will] = watcher.wait_for("status/app")
        assert will.payload == b"offline"
        session_present, code, _ = app.wait("connect")  # on its own, after its delay
        assert session_present and not code.is_failure
        wait_until(lambda: "app" in [c.client_id for c in test_broker.clients()],
                   what="paho back")
        app.disconnect()


@VERSIONS
def test_a_silent_connection_is_dropped_by_the_brokers_keep_alive(version: int) -> None:
    with broker(clock="manual") as test_broker, \
            TestClient(test_broker, client_id="watcher") as watcher:
        watcher.subscribe("status/#", qos=1)
        app = PahoClient(test_broker.address, client_id="app", version=version)
        app.client.will_set("status/app", b"offline", qos=1)
        app.connect(keepalive=10)
        test_broker.drop("app", how="silent")  # half-open: nothing passes, nothing closes
        test_broker.advance(14)  # within 1.5 x the keep alive
        assert "app" in [c.client_id for c in test_broker.clients()]
        assert watcher.received == []
        test_broker.advance(2)
        [will] = watcher.wait_for("status/app")
        assert will.payload == b"offline"
        assert "app" not in [c.client_id for c in test_broker.clients()]
        app.stop()


@VERSIONS
def test_paho_resends_a_message_whose_puback_was_withheld_with_dup_after_reconnect(
        version: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mqlite.broker.packets")
    with broker() as test_broker:
        app = persistent_paho(test_broker, "app", version)
        with test_broker.withhold("app", packet="PUBACK") as held:
            info = app.client.publish("readings/t", b"21.5", qos=1)
            test_broker.wait_for("readings/t")
            wait_until(lambda: held.packets == 1, what="the PUBACK held back")
            assert not info.is_published()
            test_broker.drop("app")  # the connection that was owed the PUBACK
            app.wait("connect")
            # The resend, routed again (QoS 1 is at least once), its PUBACK held back again.
            test_broker.wait_for("readings/t", count=2)
            assert not info.is_published()
        info.wait_for_publish(5)  # released when the block ended
        assert info.is_published()
    received = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("in  PUBLISH") and "from app" in r.getMessage()]
    assert len(received) == 2 and "dup" not in received[0] and " dup " in received[1]
    app.stop()


@VERSIONS
def test_a_withheld_suback_delays_the_subscription_callback(test_broker: TestBroker,
                                                             version: int) -> None:
    app = PahoClient(test_broker.address, client_id="app", version=version)
    app.connect()
    with test_broker.withhold("app", packet="SUBACK") as held:
        app.client.subscribe("jobs/#", 1)
        wait_until(lambda: held.packets == 1, what="the SUBACK held back")
        assert app.events.empty()  # paho has heard nothing
    assert app.wait("subscribe")[0].value == 1  # granted QoS 1, once released
    app.disconnect()


def test_a_withheld_pubrec_holds_a_qos_2_flow_until_released(test_broker: TestBroker) -> None:
    with TestClient(test_broker, client_id="app") as app:
        with test_broker.withhold("app", packet="PUBREC") as held:
            info = app.client.publish("orders/1", b"x", qos=2)
            wait_until(lambda: held.packets == 1, what="the PUBREC held back")
            assert not info.is_published()
        info.wait_for_publish(5)
        assert info.is_published()
    [order] = test_broker.wait_for("orders/#")
    assert order.qos == 2


def test_paho_sees_a_refused_connect_with_the_code_asked_for(test_broker: TestBroker) -> None:
    with test_broker.refuse_connects(0x87):
        app = PahoClient(test_broker.address, client_id="app", version=4)
        app.client.reconnect_delay_set(0.05, 0.1)
        _, code, _ = app.connect()
        assert code.is_failure and code.value == 0x87  # paho reads 3.1.1's 5 as this
    _, code, _ = app.wait("connect")  # only one was refused: its retry gets in
    assert not code.is_failure
    app.disconnect()


def test_an_mqtt_5_client_reads_the_reason_code(test_broker: TestBroker) -> None:
    test_broker.refuse_connects(0x8A, count=2)  # banned
    codes = []
    for _ in range(3):
        client = mqlite_client.Client(mqlite_client.CallbackAPIVersion.VERSION2, "app",
                                      protocol=mqlite_client.MQTTv5)
        client.on_connect = lambda c, u, flags, code, props: codes.append(code.value)
        client.connect(*test_broker.address)
        while len(codes) < _ + 1:
            client.loop(timeout=0.5)
        client.disconnect()
    assert codes == [0x8A, 0x8A, 0]


def test_aiomqtt_raises_its_connect_error_on_a_refusal(test_broker: TestBroker) -> None:
    async def connect() -> None:
        async with aiomqtt.Client(test_broker.host, port=test_broker.port, identifier="app"):
            pass

    with test_broker.refuse_connects(0x86), pytest.raises(aiomqtt.MqttCodeError) as refused:
        asyncio.run(connect())
    assert str(refused.value.rc) == "Bad user name or password"  # 3.1.1: code 4
    asyncio.run(connect())  # the refusal was used up


@VERSIONS
def test_a_persistent_session_and_its_queue_survive_restart(test_broker: TestBroker,
                                                            version: int) -> None:
    subscriber = persistent_paho(test_broker, "subscriber", version)
    subscriber.subscribe("jobs/#", qos=1)
    subscriber.stop()  # gone without DISCONNECT, its session kept
    test_broker.wait_for_client("subscriber", connected=False)
    with TestClient(test_broker, client_id="producer") as producer:
        for n in range(3):
            producer.publish(f"jobs/{n}", str(n), qos=1)
    address = test_broker.address
    test_broker.restart()
    assert test_broker.address == address
    assert [s.queued for s in test_broker.sessions() if s.client_id == "subscriber"] == [3]
    subscriber = persistent_paho(test_broker, "subscriber", version)
    assert [subscriber.message().payload for _ in range(3)] == [b"0", b"1", b"2"]
    subscriber.disconnect()


def test_paho_reconnects_by_itself_after_a_restart_and_keeps_its_subscription(
        test_broker: TestBroker) -> None:
    subscriber = persistent_paho(test_broker, "subscriber", 4)
    subscriber.subscribe("jobs/#", qos=1)
    test_broker.restart()
    session_present, code, _ = subscriber.wait("connect")
    assert session_present and not code.is_failure
    test_broker.publish("jobs/after", "go", qos=1)
    assert subscriber.message().payload == b"go"
    subscriber.disconnect()


def test_kill_keeps_what_was_acknowledged_in_a_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "broker.db"
    with broker(db=str(database)) as test_broker:
        subscriber = persistent_paho(test_broker, "subscriber", 4)
        subscriber.subscribe("jobs/#", qos=1)
        subscriber.stop()
        test_broker.wait_for_client("subscriber", connected=False)
        with TestClient(test_broker, client_id="producer") as producer:
            producer.publish("jobs/1", "acknowledged", qos=1)  # PUBACKed: it was committed
            producer.publish("state", "kept", qos=1, retain=True)
        test_broker.kill()
        with pytest.raises(RuntimeError, match="not running"):
            test_broker.sessions()
        test_broker.start()
        assert [m.payload for m in test_broker.retained("state")] == [b"kept"]
        subscriber = persistent_paho(test_broker, "subscriber", 4)
        assert subscriber.message().payload == b"acknowledged"
        subscriber.disconnect()


@VERSIONS
def test_a_full_disk_is_not_acknowledged_and_paho_resends_once_it_recovers(
        test_broker: TestBroker, version: int) -> None:
    subscriber = persistent_paho(test_broker, "subscriber", version)
    subscriber.subscribe("jobs/#", qos=1)  # persistent: its deliveries go to the store
    publisher = persistent_paho(test_broker, "publisher", version)
    with test_broker.store_fails():
        info = publisher.client.publish("jobs/1", b"x", qos=1)
        publisher.wait("disconnect")  # closed without a PUBACK: nothing of it was stored
        assert not info.is_published()
    info.wait_for_publish(5)  # reconnected and sent again, stored this time
    assert info.is_published()
    assert subscriber.message().payload == b"x"
    publisher.disconnect()
    subscriber.disconnect()


def mqlite_app(test_broker: TestBroker, client_id: str, version: int) -> TestClient:
    """mqlite's own client, with a session that outlives its connection, reconnecting on its
    own within a tenth of a second."""
    app = TestClient(test_broker, client_id=client_id, version=version, clean=False)
    app.client.reconnect_delay_set(0.05, 0.1)
    return app


@VERSIONS
def test_mqlite_client_comes_back_after_a_reset(test_broker: TestBroker, version: int) -> None:
    with mqlite_app(test_broker, "app", version) as app:
        app.subscribe("jobs/#", qos=1)
        test_broker.drop("app", how="reset")
        test_broker.wait_for_client("app", connected=False)
        test_broker.wait_for_client("app")  # its loop reconnected, its session resumed
        test_broker.publish("jobs/1", "go", qos=1)
        assert app.wait_for("jobs/#")[0].payload == b"go"


@VERSIONS
def test_mqlite_client_resends_with_dup_what_was_not_acknowledged(
        version: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mqlite.broker.packets")
    with broker() as test_broker, mqlite_app(test_broker, "app", version) as app:
        with test_broker.withhold("app", packet="PUBACK"):
            info = app.client.publish("readings/t", b"1", qos=1)
            test_broker.wait_for("readings/t")
            test_broker.drop("app")
            test_broker.wait_for("readings/t", count=2)  # resent on the new connection
        info.wait_for_publish(5)
        assert info.is_published()
    received = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("in  PUBLISH") and "from app" in r.getMessage()]
    assert len(received) == 2 and " dup " in received[1]
