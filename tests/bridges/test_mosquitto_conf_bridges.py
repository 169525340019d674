"""mosquitto.conf's bridge syntax, read into the same bridges as the TOML file's, with
mosquitto's defaults; and a mosquitto.conf bridge that runs, to a real mosquitto."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqlite.broker.config.config_file import ConfigError, load

from ..broker.helpers import PahoClient
from ..broker_process import BrokerProcess
from ..config.test_config_files import broker_cli, write
from ..interop.mosquitto import TIMEOUT, require_mosquitto, start_mosquitto

require_mosquitto()

CONF = """\
listener 0 127.0.0.1

connection cloud
addresses broker.example.net:8883 backup.example.net
bridge_protocol_version mqttv50
remote_clientid edge-7
local_clientid edge-7-here
remote_username edge
remote_password s3cret
cleansession true
keepalive_interval 30
restart_timeout 2 20
round_robin true
try_private false
notification_topic edge/state
bridge_cafile /etc/ssl/ca.crt
bridge_insecure true
start_type lazy
idle_timeout 120
threshold 50
bridge_outgoing_retain false
topic sensors/# out 1 "" site7/
topic cmd/# in 1 local/ site7/
topic status both
topic "" out 0 here/door there/door
"""


def test_a_mosquitto_bridge_block(tmp_path: Path) -> None:
    settings = load(write(tmp_path / "m.conf", CONF))
    [bridge] = settings.bridges
    assert bridge.addresses == ("broker.example.net:8883", "backup.example.net")
    assert (bridge.protocol, bridge.resolved_client_id, bridge.resolved_local_client_id) == (
        5, "edge-7", "edge-7-here")
    assert (bridge.username, bridge.password, bridge.clean_start) == ("edge", "s3cret", True)
    assert (bridge.keepalive, bridge.restart_timeout, bridge.round_robin) == (30, (2.0, 20.0),
                                                                              True)
    assert not bridge.try_private and bridge.state_topic == "edge/state"
    assert bridge.tls is not None and (bridge.tls.cafile, bridge.tls.insecure) == (
        "/etc/ssl/ca.crt", True)
    out, into, both, single = bridge.topics
    assert (out.local_filter, out.remote_filter, out.qos) == ("sensors/#", "site7/sensors/#", 1)
    assert (into.remote_filter, into.to_local("site7/cmd/x")) == ("site7/cmd/#", "local/cmd/x")
    assert (both.direction, both.qos) == ("both", 0)  # mosquitto's default QoS
    assert (single.local_filter, single.to_remote("here/door")) == ("here/door", "there/door")
    assert (bridge.start_type, bridge.idle_timeout, bridge.threshold) == ("lazy", 120.0, 50)
    assert any(":21: bridge_outgoing_retain false is not supported" in w
               for w in settings.warnings), settings.warnings


def test_mosquitto_defaults(tmp_path: Path) -> None:
    """topic's default direction is out at QoS 0; the protocol 3.1.1, cleansession false,
    try_private true, remote_clientid "<name>.<hostname>", local_clientid "local.<that>"."""
    [bridge] = load(write(tmp_path / "d.conf", "connection b\naddress h\ntopic a/#\n")).bridges
    assert [(t.pattern, t.direction, t.qos) for t in bridge.topics] == [("a/#", "out", 0)]
    assert (bridge.protocol, bridge.clean_start, bridge.try_private) == (4, False, True)
    assert bridge.resolved_client_id.startswith("b.")
    assert bridge.resolved_local_client_id == f"local.{bridge.resolved_client_id}"


@pytest.mark.parametrize(("text", "message"), [
    ("connection b\ntopic a\n", "bridge 'b' needs an address"),
    ("connection b\naddress h\ntopic a up\n", "direction must be one of out, in, both"),
    ("connection b\naddress h\ntopic a out 3\n", "qos must be 0, 1 or 2"),
    ("connection b\naddress h\ntopic a out 1 onlyone\n", "topic is PATTERN"),
    ("connection b\naddress h\nbridge_protocol_version mqttv31\ntopic a\n",
     "bridge_protocol_version must be mqttv311 or mqttv50"),
    ("connection b\naddress h\n", "a bridge needs at least one topic"),
    ("topic a\n", "topic outside a bridge"),
])
def test_a_bad_bridge_block_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.conf", text)
    with pytest.raises(ConfigError, match=r"bad\.conf:\d+: "):
        load(path)
    done = broker_cli("-c", path, "--check")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr, done.stderr


def test_a_mosquitto_conf_bridge_runs(tmp_path: Path) -> None:
    process, port = start_mosquitto(tmp_path)
    try:
        path = write(tmp_path / "edge.conf", f"""\
listener 0 127.0.0.1
allow_anonymous true
connection cloud
address 127.0.0.1:{port}
remote_clientid edge-7
restart_timeout 1
topic sensors/# out 1 "" site7/
""")
        with BrokerProcess("-c", path) as broker:
            broker.wait_for_log("bridge cloud connected")
            remote = PahoClient(("127.0.0.1", port), client_id="remote")
            remote.connect()
            remote.subscribe("site7/#", 1)
            local = PahoClient(broker.address, client_id="local")
            local.connect()
            local.publish("sensors/t", b"21.5", qos=1)
            message = remote.message()
            assert (message.topic, message.payload) == ("site7/sensors/t", b"21.5")
            assert broker.terminate() == 0
    finally:
        process.terminate()
        process.wait(TIMEOUT)

