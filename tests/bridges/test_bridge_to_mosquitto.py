"""Bridges against a real mosquitto as the remote broker, MQTT 3.1.1 and 5: out, in and both
directions with prefixes, wildcard patterns, retained messages, QoS 0, 1 and 2, no echo, and
nothing lost while the remote broker is down."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlite.broker import Access, Broker, ClientInfo, Hook
from mqlite.broker.bridge.config import BridgeConfig, BridgeTLS, BridgeTopic
from mqlite.protocol import Connack, ConnackReturnCode, Connect, ReasonCode

from ..broker.helpers import PahoClient, RawClient, wait_until
from ..broker_process import BrokerProcess
from ..config.test_config_files import write
from ..conftest import BrokerFactory
from ..interop.mosquitto import (
    TIMEOUT,
    free_port,
    require_mosquitto,
    start_mosquitto,
    wait_listening,
)
from ..tls_certs import Certificates

require_mosquitto()

# Started as root, mosquitto would switch to its own user, which cannot read a test's files.
AS_ROOT = "user root\n" if os.geteuid() == 0 else ""


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    process, port = start_mosquitto(tmp_path)
    yield process, port
    process.terminate()
    process.wait(TIMEOUT)


def bridged(make_broker: BrokerFactory, tmp_path: Path, port: int, protocol: int,
            *topics: BridgeTopic) -> Broker:
    """A broker with one bridge to 127.0.0.1:port, once it is connected and subscribed."""
    config = BridgeConfig(name="edge", addresses=(f"127.0.0.1:{port}",), protocol=protocol,
                          client_id="edge-7", restart_timeout=(0.05, 0.2), topics=topics)
    broker = make_broker(db=str(tmp_path / "mqlite.db"), bridges=[config])
    bridge = broker.bridges[0]
    wait_until(lambda: bridge.stats.connected and bridge.stats.subscribed,
               what="the bridge to connect and subscribe")
    return broker


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_out_with_prefixes(make_broker: BrokerFactory, tmp_path: Path, version: int,
                           mosquitto: tuple[subprocess.Popen[bytes], int], qos: int) -> None:
    _, port = mosquitto
    broker = bridged(make_broker, tmp_path, port, version, BridgeTopic(
        pattern="sensors/#", direction="out", qos=qos, local_prefix="edge/",
        remote_prefix="site7/"))
    remote = PahoClient(("127.0.0.1", port), client_id="remote-sub")
    remote.connect()
    remote.subscribe("#", 2)
    local = PahoClient(broker.address, client_id="local-pub")
    local.connect()
    for number in range(5):
        local.publish(f"edge/sensors/room{number}/t", b"%d" % number, qos=qos)
    local.publish("edge/other", b"not bridged", qos=qos)
    got = [remote.message() for _ in range(5)]
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        (f"site7/sensors/room{n}/t", b"%d" % n, qos) for n in range(5)]
    remote.no_message()
    if qos:
        wait_until(lambda: broker.bridges[0].stats.sent == 5, what="five acknowledged")


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_in_with_prefixes(make_broker: BrokerFactory, tmp_path: Path, version: int,
                          mosquitto: tuple[subprocess.Popen[bytes], int], qos: int) -> None:
    _, port = mosquitto
    broker = bridged(make_broker, tmp_path, port, version, BridgeTopic(
        pattern="cmd/+", direction="in", qos=qos, local_prefix="from-cloud/",
        remote_prefix="site7/"))
    local = PahoClient(broker.address, client_id="local-sub")
    local.connect()
    local.subscribe("#", 2)
    remote = PahoClient(("127.0.0.1", port), client_id="remote-pub")
    remote.connect()
    remote.publish("site7/cmd/reboot", b"now", qos=qos)
    remote.publish("site7/cmd/deep/level", b"no match", qos=qos)
    remote.publish("site8/cmd/reboot", b"other site", qos=qos)
    message = local.message()
    assert (message.topic, message.payload, message.qos) == ("from-cloud/cmd/reboot", b"now", qos)
    local.no_message()


def test_both_directions_do_not_echo(make_broker: BrokerFactory, tmp_path: Path, version: int,
                                     mosquitto: tuple[subprocess.Popen[bytes], int]) -> None:
    """One topic both ways: each message arrives once on each side, never back where it came
    from (No Local on both sides; on MQTT 3.1.1 the bridge bit asks mosquitto for it)."""
    _, port = mosquitto
    broker = bridged(make_broker, tmp_path, port, version,
                     BridgeTopic(pattern="status/#", direction="both", qos=1))
    local = PahoClient(broker.address, client_id="local")
    local.connect()
    local.subscribe("status/#", 1)
    remote = PahoClient(("127.0.0.1", port), client_id="remote")
    remote.connect()
    remote.subscribe("status/#", 1)
    for number in range(20):
        local.publish("status/local", b"L%d" % number, qos=1)
        remote.publish("status/remote", b"R%d" % number, qos=1)
    # Each side: its own 20 from its broker, the other side's 20 through the bridge.
    local_got = sorted(local.message().payload for _ in range(40))
    remote_got = sorted(remote.message().payload for _ in range(40))
    expected = sorted([b"L%d" % n for n in range(20)] + [b"R%d" % n for n in range(20)])
    assert local_got == expected and remote_got == expected
    local.no_message()
    remote.no_message()


def test_retained_messages_cross_with_their_flag(
        make_broker: BrokerFactory, tmp_path: Path, version: int,
        mosquitto: tuple[subprocess.Popen[bytes], int]) -> None:
    _, port = mosquitto
    remote_pub = PahoClient(("127.0.0.1", port), client_id="remote-pub")
    remote_pub.connect()
    remote_pub.publish("config/site", b"remote retained", qos=1, retain=True)
    broker = bridged(make_broker, tmp_path, port, version,
                     BridgeTopic(pattern="config/#", direction="in", qos=1),
                     BridgeTopic(pattern="state/#", direction="out", qos=1))
    local_pub = PahoClient(broker.address, client_id="local-pub")
    local_pub.connect()
    local_pub.publish("state/door", b"local retained", qos=1, retain=True)
    wait_until(lambda: broker.bridges[0].stats.sent == 1, what="the retained message out")
    # Late subscribers on each side get the other side's retained message, flagged retained.
    local = PahoClient(broker.address, client_id="local-sub")
    local.connect()
    local.subscribe("config/#", 1)
    message = local.message()
    assert (message.topic, message.payload, message.retain) == (
        "config/site", b"remote retained", True)
    remote = PahoClient(("127.0.0.1", port), client_id="remote-sub")
    remote.connect()
    remote.subscribe("state/#", 1)
    message = remote.message()
    assert (message.topic, message.payload, message.retain) == (
        "state/door", b"local retained", True)


def test_nothing_lost_while_the_remote_broker_is_down(
        make_broker: BrokerFactory, tmp_path: Path, version: int) -> None:
    """QoS 1 messages published while mosquitto is stopped wait in the bridge's session (on
    disk) and all arrive, in order, once it is back."""
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    # Started as root, mosquitto would switch to its own user, which cannot write here.
    persistence = f"persistence true\npersistence_location {remote_dir}/\nuser root\n"
    process, port = start_mosquitto(remote_dir, persistence)
    broker = bridged(make_broker, tmp_path, port, version,
                     BridgeTopic(pattern="data/#", direction="out", qos=1))
    subscriber = PahoClient(("127.0.0.1", port), client_id="remote-sub", clean=False)
    subscriber.connect()
    subscriber.subscribe("data/#", 1)
    subscriber.disconnect()
    process.terminate()  # mosquitto saves its sessions on a clean stop
    process.wait(TIMEOUT)
    bridge = broker.bridges[0]
    wait_until(lambda: not bridge.stats.connected, what="the bridge to see mosquitto go")
    publisher = PahoClient(broker.address, client_id="local-pub")
    publisher.connect()
    for number in range(200):
        assert publisher.publish("data/n", b"%d" % number, qos=1) == 0
    process, _ = start_mosquitto(remote_dir, persistence, port=port)
    try:
        wait_until(lambda: bridge.stats.sent == 200, timeout=30, what="all 200 forwarded")
        subscriber = PahoClient(("127.0.0.1", port), client_id="remote-sub", clean=False)
        subscriber.connect()
        got = [subscriber.message().payload for _ in range(200)]
        assert got == [b"%d" % n for n in range(200)]
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def test_a_client_cannot_take_the_bridges_local_session(
        make_broker: BrokerFactory, tmp_path: Path, version: int,
        mosquitto: tuple[subprocess.Popen[bytes], int]) -> None:
    _, port = mosquitto
    broker = bridged(make_broker, tmp_path, port, 5,
                     BridgeTopic(pattern="a/#", direction="out", qos=1))
    raw = RawClient(broker.address, version=version)
    raw.send(Connect(client_id="local.edge-7", protocol_version=version))
    code = ReasonCode.CLIENT_IDENTIFIER_NOT_VALID if version == 5 else \
        ConnackReturnCode.IDENTIFIER_REJECTED
    assert raw.expect_closed() == [Connack(reason_code=code)]
    assert broker.bridges[0].link.conn is not None and broker.bridges[0].link.conn.open


def test_queued_messages_survive_kill_9_of_mqlite(tmp_path: Path) -> None:
    """300 acknowledged QoS 1 messages for a bridge whose remote broker is down; mqlite is
    killed with SIGKILL; restarted (and mosquitto back), it forwards every one."""
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    persistence = f"persistence true\npersistence_location {remote_dir}/\nuser root\n"
    process, port = start_mosquitto(remote_dir, persistence)
    subscriber = PahoClient(("127.0.0.1", port), client_id="remote-sub", clean=False)
    subscriber.connect()
    subscriber.subscribe("data/#", 1)
    subscriber.disconnect()
    process.terminate()
    process.wait(TIMEOUT)
    config = write(tmp_path / "bridge.toml", f"""
[[listeners]]
port = 0
[[bridges]]
name = "edge"
address = "127.0.0.1:{port}"
restart_timeout = [0.05, 0.2]
topics = [{{ pattern = "data/#", direction = "out", qos = 1 }}]
""")
    database = str(tmp_path / "mqlite.db")
    with BrokerProcess("-c", config, "--db", database) as first:
        first.discard_log()
        publisher = PahoClient(first.address, client_id="local-pub")
        publisher.connect()
        for number in range(300):
            assert publisher.publish("data/n", b"%d" % number, qos=1) == 0
        first.proc.kill()
        first.proc.wait()
        publisher.stop()
    process, _ = start_mosquitto(remote_dir, persistence, port=port)
    try:
        with BrokerProcess("-c", config, "--db", database) as second:
            second.discard_log()
            subscriber = PahoClient(("127.0.0.1", port), client_id="remote-sub", clean=False)
            subscriber.connect()
            got: set[bytes] = set()
            while len(got) < 300:
                got.add(subscriber.message(timeout=20).payload)
            assert got == {b"%d" % n for n in range(300)}
            second.terminate()
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def start_tls_mosquitto(directory: Path, certificates: Certificates,
                        extra: str = "") -> tuple[subprocess.Popen[bytes], int]:
    """mosquitto with one TLS listener (the test CA's server certificate for localhost)."""
    port = free_port()
    config = directory / "tls.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{AS_ROOT}"
                      f"certfile {certificates.server_cert}\n"
                      f"keyfile {certificates.server_key}\n{extra}")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_listening(port, process)
    return process, port


def test_a_bridge_over_tls_with_a_client_certificate(
        make_broker: BrokerFactory, tmp_path: Path, certificates: Certificates) -> None:
    """The remote mosquitto asks for TLS and a client certificate: the bridge verifies the
    server's against its CA and shows its own."""
    process, port = start_tls_mosquitto(tmp_path, certificates, f"cafile {certificates.ca}\n"
                                        "require_certificate true\n")
    try:
        broker = make_broker(db=str(tmp_path / "mqlite.db"), bridges=[BridgeConfig(
            name="edge", addresses=(f"localhost:{port}",), client_id="edge-7",
            restart_timeout=(0.05, 0.2),
            tls=BridgeTLS(cafile=str(certificates.ca), certfile=str(certificates.client_cert),
                          keyfile=str(certificates.client_key)),
            topics=(BridgeTopic(pattern="secure/#", direction="out", qos=1),))])
        bridge = broker.bridges[0]
        wait_until(lambda: bridge.stats.connected, what="the TLS bridge to connect")
        local = PahoClient(broker.address, client_id="local")
        local.connect()
        local.publish("secure/x", b"over tls", qos=1)
        wait_until(lambda: bridge.stats.sent == 1, what="the message across")
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def test_a_bridge_refuses_a_server_its_ca_did_not_sign(
        make_broker: BrokerFactory, tmp_path: Path, certificates: Certificates) -> None:
    process, port = start_tls_mosquitto(tmp_path, certificates)
    try:
        broker = make_broker(db=str(tmp_path / "mqlite.db"), bridges=[BridgeConfig(
            name="edge", addresses=(f"localhost:{port}",), restart_timeout=(0.05, 0.2),
            tls=BridgeTLS(cafile=str(certificates.other_ca)),
            topics=(BridgeTopic(pattern="secure/#", direction="out", qos=1),))])
        stats = broker.bridges[0].stats
        wait_until(lambda: "certificate verify failed" in stats.last_error,
                   what="the verification to fail")
        assert stats.connects == 0
    finally:
        process.terminate()
        process.wait(TIMEOUT)


class DenyBridges(Hook):
    """An ACL that names no bridge: it refuses every client id starting with "local."."""

    def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
        return not client.client_id.startswith("local.")


def test_the_bridges_session_passes_the_access_checks(
        make_broker: BrokerFactory, tmp_path: Path,
        mosquitto: tuple[subprocess.Popen[bytes], int]) -> None:
    """What a bridge carries is the operator's configuration: an access hook that knows
    nothing of it refuses neither what it takes out nor what it brings in."""
    _, port = mosquitto
    config = BridgeConfig(name="edge", addresses=(f"127.0.0.1:{port}",), client_id="edge-7",
                          restart_timeout=(0.05, 0.2),
                          topics=(BridgeTopic(pattern="up/#", direction="out", qos=1),
                                  BridgeTopic(pattern="down/#", direction="in", qos=1)))
    broker = make_broker(db=str(tmp_path / "mqlite.db"), bridges=[config],
                         hooks=[DenyBridges()])
    bridge = broker.bridges[0]
    wait_until(lambda: bridge.stats.connected and bridge.stats.subscribed,
               what="the bridge to connect and subscribe")
    remote = PahoClient(("127.0.0.1", port), client_id="remote")
    remote.connect()
    remote.subscribe("up/#", 1)
    local = PahoClient(broker.address, client_id="local-client")
    local.connect()
    local.subscribe("down/#", 1)
    local.publish("up/x", b"out", qos=1)
    assert remote.message().payload == b"out"
    remote.publish("down/y", b"in", qos=1)
    assert local.message().payload == b"in"
