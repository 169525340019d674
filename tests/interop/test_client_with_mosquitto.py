"""mqlite's client against a real mosquitto broker (Debian package), started on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mqlite.client as mqtt

from .mosquitto import require_mosquitto, start_mosquitto

require_mosquitto()

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    process, port = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield "127.0.0.1", port
    process.terminate()
    process.wait(TIMEOUT)


class Collector:
    def __init__(self) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.condition = threading.Condition()

    def __call__(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.condition:
            self.messages.append(message)
            self.condition.notify_all()

    def wait_for(self, count: int) -> list[mqtt.MQTTMessage]:
        with self.condition:
            assert self.condition.wait_for(lambda: len(self.messages) >= count, TIMEOUT)
            return list(self.messages)


def connected_client(address: tuple[str, int], client_id: str, version: int,
                     **kwargs: Any) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=client_id, protocol=version, **kwargs)
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set()
    client.connect(*address)
    client.loop_start()
    assert ready.wait(TIMEOUT)
    return client


def stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def test_all_qos_both_ways(mosquitto: tuple[str, int], version: int) -> None:
    collector = Collector()
    subscriber = connected_client(mosquitto, f"mq-sub-{version}", version)
    subscriber.on_message = collector
    acked = threading.Event()
    subscriber.on_subscribe = lambda *args: acked.set()
    subscriber.subscribe("mq/+/t", 2)
    assert acked.wait(TIMEOUT)
    publisher = connected_client(mosquitto, f"mq-pub-{version}", version)
    properties = None
    if version == 5:
        properties = mqtt.Properties(mqtt.PacketTypes.PUBLISH)
        properties.UserProperty = ("via", "mosquitto")
    infos = [publisher.publish(f"mq/{qos}/t", b"q%d" % qos, qos=qos, properties=properties)
             for qos in range(3)]
    for info in infos:
        assert info.wait_for_publish(TIMEOUT)
    got = collector.wait_for(3)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        ("mq/0/t", b"q0", 0), ("mq/1/t", b"q1", 1), ("mq/2/t", b"q2", 2)]
    if version == 5:
        assert all(m.properties.UserProperty == [("via", "mosquitto")] for m in got)
    stop(publisher)
    stop(subscriber)


def test_persistent_session_queues_while_offline(mosquitto: tuple[str, int]) -> None:
    subscriber = connected_client(mosquitto, "mq-persist", 4, clean_session=False)
    acked = threading.Event()
    subscriber.on_subscribe = lambda *args: acked.set()
    subscriber.subscribe("mq/persist", 1)
    assert acked.wait(TIMEOUT)
    stop(subscriber)
    publisher = connected_client(mosquitto, "mq-persist-pub", 4)
    for i in range(5):
        assert publisher.publish("mq/persist", b"%d" % i, qos=1).wait_for_publish(TIMEOUT)
    stop(publisher)
    collector = Collector()
    again = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                        client_id="mq-persist", clean_session=False)
    again.on_message = collector
    sessions: list[bool] = []
    again.on_connect = lambda c, u, f, rc, p: sessions.append(f.session_present)
    again.connect(*mosquitto)
    again.loop_start()
    assert [m.payload for m in collector.wait_for(5)] == [b"%d" % i for i in range(5)]
    assert sessions == [True]
    stop(again)


def test_will_is_published_when_the_connection_dies(mosquitto: tuple[str, int]) -> None:
    collector = Collector()
    watcher = connected_client(mosquitto, "mq-watcher", 4)
    watcher.on_message = collector
    acked = threading.Event()
    watcher.on_subscribe = lambda *args: acked.set()
    watcher.subscribe("mq/will", 1)
    assert acked.wait(TIMEOUT)
    doomed = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mq-doomed")
    doomed.will_set("mq/will", b"gone", qos=1)
    doomed.connect(*mosquitto)
    while not doomed.is_connected():
        doomed.loop(0.1)
    doomed.socket().shutdown(socket.SHUT_RDWR)  # the link dies without DISCONNECT
    assert [m.payload for m in collector.wait_for(1)] == [b"gone"]
    stop(watcher)



@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl makes the test certificate")
def test_tls_with_a_self_signed_certificate() -> None:
    """tls_set(ca_certs=...) verifies mosquitto's certificate and the link carries MQTT."""
    # Not under pytest's 0700 tmp tree: mosquitto run as root reads its certificate after
    # dropping to the mosquitto user.
    with tempfile.TemporaryDirectory() as directory:
        check_tls(Path(directory))


def check_tls(work: Path) -> None:
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(work, 0o755)
    for path in (cert, key):
        os.chmod(path, 0o644)
    process, port = start_mosquitto(work, f"certfile {cert}\nkeyfile {key}\n")
    try:
        collector = Collector()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mq-tls")
        client.tls_set(ca_certs=str(cert))
        client.on_message = collector
        subscribed = threading.Event()
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_connect = lambda c, u, f, rc, p: c.subscribe("tls/t", 1)
        client.connect("localhost", port)
        client.loop_start()
        assert subscribed.wait(TIMEOUT)
        client.publish("tls/t", b"secret", qos=1)
        assert [m.payload for m in collector.wait_for(1)] == [b"secret"]
        stop(client)
    finally:
        process.terminate()
        process.wait(TIMEOUT)
