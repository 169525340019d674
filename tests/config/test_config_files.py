"""The daemon's configuration: mqlite's TOML, mosquitto.conf syntax, flags over the file,
``--check``, and the one-line errors for what cannot be used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mqlite.broker import BrokerConfig
from mqlite.broker.config.config_file import BROKER_TYPES, ConfigError, load
from mqlite.protocol import Publish

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess


def broker_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", *args],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def a_value_other_than_the_default(name: str) -> Any:
    default = getattr(BrokerConfig(), name)
    kind = BROKER_TYPES[name]
    if name == "queue_overflow":
        return "drop-newest"
    if name == "http":
        return "127.0.0.1:8080"
    if name == "admin_token":
        return "a-token-of-sixteen-or-more"
    if kind is bool:
        return not default
    if kind == bool | None:
        return True
    if kind == str | None:
        return "some-file"
    if name in ("host",):
        return "::1"
    if name == "max_qos":
        return 1
    if isinstance(default, float) or kind in (float, float | None):
        return 7.5
    return 17 if name != "max_packet_size" and name != "connect_packet_limit" else 4096


def test_every_broker_setting_is_reachable_from_toml(tmp_path: Path) -> None:
    chosen = {name: a_value_other_than_the_default(name) for name in BROKER_TYPES}
    lines = [f"{name} = {value!r}".replace("'", '"').replace("True", "true")
             .replace("False", "false") for name, value in chosen.items()]
    settings = load(write(tmp_path / "all.toml", "\n".join(lines) + "\n"))
    config = BrokerConfig(**settings.values)
    for name, value in chosen.items():
        assert getattr(config, name) == value, name


@pytest.mark.parametrize(("text", "message"), [
    ("max_qos = 1\nmax_keepalive = \"long\"\n", ":2: max_keepalive must be an integer"),
    ("db = \"x.db\"\n\nfrobnicate = 1\n", ":3: unknown key 'frobnicate'"),
    ("[clustering]\nnodes = 3\n", "unknown table [clustering]"),
    ("[[listeners]]\ntype = \"tcp\"\n[[listeners]]\nport = \"8883\"\n",
     ":4: port must be an integer, not '8883' (in [[listeners]] number 2)"),
    ("[[listeners]]\ntype = \"quic\"\n", ":2: [[listeners]] number 1: type must be one of"),
    ("[[listeners]]\ntype = \"tls\"\nport = 8883\n", "a tls listener needs certfile and keyfile"),
    ("max_qos = 1\nmax_qos 2\n", "Expected '=' after a key"),
    ("[[listeners]]\nport = 1900\nname = \"one\"\n[[listeners]]\ntype = \"ws\"\nport = 1900\n",
     "listener ws:1900 (127.0.0.1:1900) listens where listener one does"),
])
def test_a_bad_toml_file_is_one_line_naming_key_and_line(tmp_path: Path, text: str,
                                                          message: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    done = broker_cli("-c", path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr and path in done.stderr, done.stderr


def test_flags_override_the_file_and_check_prints_the_result(tmp_path: Path) -> None:
    path = write(tmp_path / "mqlite.toml", "max_inflight = 5\nmax_qos = 1\ndb = \"a.db\"\n")
    done = broker_cli("-c", path, "--max-inflight", "9", "--no-retain-available", "--check")
    assert done.returncode == 0, done.stderr
    assert "max_inflight = 9\n" in done.stdout
    assert "max_qos = 1\n" in done.stdout
    assert "retain_available = false\n" in done.stdout
    assert 'db = "a.db"\n' in done.stdout
    assert not (tmp_path / "a.db").exists(), "--check starts nothing"


def test_a_port_flag_with_listeners_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "l.toml", "[[listeners]]\nport = 1884\n")
    done = broker_cli("-c", path, "--port", "1999", "--check")
    assert done.returncode == 1
    assert "--port:" in done.stderr and "declares its listeners" in done.stderr


def test_a_broker_with_tcp_and_unix_listeners_routes_between_them(tmp_path: Path) -> None:
    sock = tmp_path / "mqtt.sock"
    path = write(tmp_path / "two.toml", f"""
        sys_interval = 0
        [[listeners]]
        type = "tcp"
        port = 0
        [[listeners]]
        type = "unix"
        path = "{sock}"
    """.replace("        ", ""))
    with BrokerProcess("-c", path) as broker:
        broker.wait_for_log(f"listening on {sock}")
        assert sock.stat().st_mode & 0o777 == 0o660
        sub = RawClient(str(sock))
        sub.connect(client_id="on-unix")
        sub.subscribe("t/#", qos=1)
        pub = RawClient(broker.address)
        pub.connect(client_id="on-tcp")
        pub.send(Publish(topic="t/1", payload=b"across", qos=0))
        message = sub.receive()
        assert isinstance(message, Publish) and message.payload == b"across"
        broker.wait_for_log("client on-unix connected from unix:")
        assert broker.terminate() == 0
    assert not sock.exists(), "the socket file is removed on stop"


def test_max_connections_closes_at_accept_and_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "few.toml", "sys_interval = 0\n[[listeners]]\nport = 0\n"
                                         "max_connections = 2\n")
    with BrokerProcess("-c", path) as broker:
        first, second = RawClient(broker.address), RawClient(broker.address)
        first.connect(client_id="one")
        second.connect(client_id="two")
        third = RawClient(broker.address)
        third.expect_closed()
        broker.wait_for_log(re.escape("at its max_connections (2)"))
        first.close()
        broker.wait_for_log("client one disconnected")
        again = RawClient(broker.address)
        again.connect(client_id="three")  # a place is free again
        broker.terminate()


def test_a_port_in_use_is_one_line_naming_the_listener(tmp_path: Path) -> None:
    with BrokerProcess() as running:
        port = running.address[1]
        path = write(tmp_path / "clash.toml", "[[listeners]]\nport = 0\nname = \"a\"\n"
                                              f"[[listeners]]\nport = {port}\nname = \"b\"\n")
        done = broker_cli("-c", path, "--db", str(tmp_path / "never.db"))
        running.terminate()
    assert done.returncode == 1
    assert "listener b: cannot listen on 127.0.0.1:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


MOSQUITTO_CONF = """\
# a mosquitto 2 configuration
per_listener_settings true
max_inflight_messages 7
max_queued_messages 0
persistence true
persistence_location {dir}/
persistence_file broker.db
persistent_client_expiration 2d
log_type warning
log_type information

listener 0 127.0.0.1
max_connections 10
allow_anonymous true

listener 0 127.0.0.1
protocol websockets

listener 0 {dir}/mosquitto.sock
http_dir /srv/www

connection to-the-cloud
address 127.0.0.1:9
topic # both 1
"""


def test_mosquitto_conf_with_three_listeners_and_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "mosquitto.conf", MOSQUITTO_CONF.format(dir=tmp_path))
    settings = load(path)
    assert [(lst.type, lst.max_connections) for lst in settings.listeners] == [
        ("tcp", 10), ("ws", -1), ("unix", -1)]
    assert settings.listeners[2].path == f"{tmp_path}/mosquitto.sock"
    values = settings.values
    assert values["max_inflight"] == values["receive_maximum"] == 7  # mosquitto's meaning
    assert values["max_queued_messages"] == 1_000_000_000  # 0: unlimited
    # mosquitto's limit is every client's: the queues held in memory get it too.
    assert values["max_memory_queued_messages"] == 1_000_000_000
    assert values["db"] == f"{tmp_path}/broker.db"
    assert values["session_expiry"] == 2 * 86_400
    assert values["log_level"] == "info"
    assert any(":20: http_dir is not supported" in w for w in settings.warnings), \
        settings.warnings
    [bridge] = settings.bridges
    assert (bridge.name, bridge.addresses) == ("to-the-cloud", ("127.0.0.1:9",))
    assert [(t.pattern, t.direction, t.qos) for t in bridge.topics] == [("#", "both", 1)]
    done = broker_cli("-c", path, "--check")
    assert done.returncode == 0, done.stderr
    assert "http_dir is not supported" in done.stderr
    with BrokerProcess("-c", path) as broker:  # and it runs: three listeners, the warning
        broker.wait_for_log("WARNING .*mosquitto.conf:20: http_dir is not supported")
        broker.wait_for_log(re.escape(f"listening on {tmp_path}/mosquitto.sock (unix:"))
        broker.wait_for_log(r"listening on 127\.0\.0\.1:\d+ \(ws:\d+\)")
        client = RawClient(broker.address)  # the first listener: tcp, max_connections 10
        client.connect(client_id="from-mosquitto-conf")
        client.ping()
        assert broker.terminate() == 0


def test_mosquitto_conf_without_persistence_keeps_nothing(tmp_path: Path) -> None:
    assert load(write(tmp_path / "m.conf", "listener 1883\n")).values["db"] == ":memory:"
    [listener] = load(str(tmp_path / "m.conf")).listeners
    assert listener.host == "0.0.0.0", "listener PORT without an address: every address"


@pytest.mark.parametrize(("text", "message"), [
    ("listener 1883\nfrobnicate yes\n", "m.conf:2: unknown option 'frobnicate'"),
    ("max_inflight_messages many\n", "m.conf:1: max_inflight_messages must be a whole number"),
    ("retain_available maybe\n", "m.conf:1: retain_available must be true or false"),
    ("address example.org\n", "m.conf:1: address outside a bridge"),
    ("listener 8883\ncertfile\n", "m.conf:2: certfile needs a value"),
])
def test_a_bad_mosquitto_conf_is_one_line_with_file_and_line(tmp_path: Path, text: str,
                                                             message: str) -> None:
    path = write(tmp_path / "m.conf", text)
    with pytest.raises(ConfigError, match=message):
        load(path)
    done = broker_cli("-c", path)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_a_listener_open_to_other_hosts_without_saying_so_is_warned(tmp_path: Path) -> None:
    """Beyond the loopback with nothing that authenticates, the broker runs (as asked) and says
    that anonymous clients from anywhere get in, until allow_anonymous says it is meant."""
    done = broker_cli("--host", "0.0.0.0", "--check")
    assert done.returncode == 0, done.stderr
    assert "tcp:1883 on 0.0.0.0 lets anonymous clients in from other hosts" in done.stderr
    meant = broker_cli("--host", "0.0.0.0", "--allow-anonymous", "true", "--check")
    assert "anonymous" not in meant.stderr, meant.stderr
    assert "anonymous" not in broker_cli("--check").stderr  # the loopback: nobody else
    closed = write(tmp_path / "closed.toml", f'password_file = "{tmp_path}/passwd"\n')
    (tmp_path / "passwd").write_text("")
    (tmp_path / "passwd").chmod(0o600)
    done = broker_cli("-c", closed, "--host", "0.0.0.0", "--check")
    assert "anonymous" not in done.stderr, done.stderr


def test_check_prints_the_listeners_as_opened_with_their_anonymous_rule(tmp_path: Path) -> None:
    done = broker_cli("--check", "--host", "0.0.0.0", "--http", "8080")
    assert done.returncode == 0, done.stderr
    assert "#   tcp 0.0.0.0:1883 (tcp:1883): anonymous clients allowed" in done.stdout
    assert "#   http 127.0.0.1:8080 (http:8080): metrics, health" in done.stdout
    conf = write(tmp_path / "m.conf", "listener 1883\n")
    assert "#   tcp 0.0.0.0:1883 (tcp:1883): anonymous clients refused" in broker_cli(
        "-c", conf, "--check").stdout


def test_a_bad_listener_key_is_named_by_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", 'sys_interval = 0\n\n[[listeners]]\ntype = "tcp"\n'
                                        "port = 99999\n")
    done = broker_cli("-c", path)
    assert done.returncode == 1 and "bad.toml:5: [[listeners]] number 1: port" in done.stderr


def test_the_default_port_taken_says_how_to_choose_another() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        done = broker_cli("--port", port, "--db", ":memory:")
    assert done.returncode == 1
    assert "Address already in use" in done.stderr and "--port" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_configuration_types_are_importable_from_mqlite_broker() -> None:
    from mqlite.broker import (
        BridgeConfig,
        BridgeTopic,
        BrokerConfig,
        ClusterConfig,
        ListenerConfig,
    )

    config = BrokerConfig(listeners=[ListenerConfig(port=0)],
                          bridges=[BridgeConfig(name="b", addresses=("h:1",),
                                                topics=(BridgeTopic(pattern="a/#"),))])
    assert config.bridges[0].name == "b" and ClusterConfig.__name__ == "ClusterConfig"
