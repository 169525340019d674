"""[[bridges]] in the TOML file: what it means, --check printing it back, and the one-line
errors for what cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqlite.broker.bridge.config import BridgeConfig, BridgeTopic
from mqlite.broker.config.config_file import load

from ..config.test_config_files import broker_cli, write

EXAMPLE = """
[[bridges]]
name = "cloud"
address = ["broker.example.net:8883", "backup.example.net"]
protocol = 5
client_id = "edge-7"
username = "edge-7"
password = "s3cret-not-shown"
tls = { cafile = "ca.crt" }
keepalive = 30
restart_timeout = [1, 10]
topics = [
  { pattern = "sensors/#", direction = "out", qos = 1, remote_prefix = "site7/" },
  { pattern = "cmd/#", direction = "in", qos = 1, remote_prefix = "site7/" },
  { pattern = "status", direction = "both" },
]
"""


def test_a_bridge_from_toml(tmp_path: Path) -> None:
    [bridge] = load(write(tmp_path / "b.toml", EXAMPLE)).bridges
    assert bridge.addresses == ("broker.example.net:8883", "backup.example.net")
    assert (bridge.protocol, bridge.resolved_client_id, bridge.keepalive) == (5, "edge-7", 30)
    assert bridge.resolved_local_client_id == "local.edge-7"
    assert bridge.restart_timeout == (1.0, 10.0)
    assert bridge.tls is not None and bridge.tls.cafile == "ca.crt"
    out, into, both = bridge.topics
    assert (out.local_filter, out.remote_filter) == ("sensors/#", "site7/sensors/#")
    assert out.to_remote("sensors/a/t") == "site7/sensors/a/t"
    assert into.to_local("site7/cmd/reboot") == "cmd/reboot"
    assert (both.direction, both.qos, both.outgoing, both.incoming) == ("both", 0, True, True)


def test_prefixes_and_a_single_remapped_topic() -> None:
    """mosquitto's meaning: the local prefix is swapped for the remote one; an empty pattern
    with both prefixes maps one topic to another."""
    topic = BridgeTopic(pattern="", direction="out", local_prefix="here/door",
                        remote_prefix="there/site7/door")
    assert (topic.local_filter, topic.to_remote("here/door")) == ("here/door",
                                                                  "there/site7/door")
    swapped = BridgeTopic(pattern="t/#", direction="in", local_prefix="a/", remote_prefix="b/")
    assert (swapped.remote_filter, swapped.to_local("b/t/1")) == ("b/t/#", "a/t/1")


def test_check_prints_the_bridge_without_its_password(tmp_path: Path) -> None:
    done = broker_cli("-c", write(tmp_path / "b.toml", EXAMPLE), "--check")
    assert done.returncode == 0, done.stderr
    assert "[[bridges]]" in done.stdout and 'name = "cloud"' in done.stdout
    assert '{ pattern = "sensors/#", direction = "out", qos = 1' in done.stdout
    assert "s3cret" not in done.stdout and "# password is set (not shown)" in done.stdout


@pytest.mark.parametrize(("text", "message"), [
    ('[[bridges]]\nname = "b"\ntopics = [{ pattern = "a" }]\n', "[[bridges]] number 1 needs "
     "'addresses'"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\n', "a bridge needs at least one topic"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\ntopics = [{ pattern = "a", qos = 3 }]\n',
     "qos must be 0, 1 or 2"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\ntopics = [{ pattern = "a", direction = "up" }]'
     '\n', "direction must be one of out, in, both"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\ntopics = [{ pattern = "a/#/b" }]\n',
     "is not a valid topic filter"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\ntopics = [{ pattern = "" }]\n',
     "an empty pattern needs both local_prefix and remote_prefix"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\ntopics = [{ pattern = "a", prefix = "x" }]\n',
     "unknown key 'prefix' in topic number 1 of [[bridges]] number 1"),
    ('[[bridges]]\nname = "b"\naddress = "h:port"\ntopics = [{ pattern = "a" }]\n',
     "the port must be a number"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\nprotocol = 3\ntopics = [{ pattern = "a" }]\n',
     "protocol must be 4 (MQTT 3.1.1) or 5"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\nkeepalive = "60"\ntopics = [{ pattern = "a" }]'
     '\n', ":4: keepalive must be an integer"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\nrestart_timeout = [30, 5]\n'
     'topics = [{ pattern = "a" }]\n', "restart_timeout must be [base, cap]"),
    ('[[bridges]]\nname = "b"\naddress = "h:1"\ntopics = [{ pattern = "a" }]\n'
     '[[bridges]]\nname = "b"\naddress = "h:2"\ntopics = [{ pattern = "a" }]\n',
     "two bridges are named 'b'"),
])
def test_a_bad_bridge_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    done = broker_cli("-c", path, "--check")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr, done.stderr


def test_defaults_follow_mosquitto() -> None:
    bridge = BridgeConfig(name="b", addresses=("h",), topics=(BridgeTopic(pattern="a"),))
    assert bridge.resolved_client_id.startswith("b.")  # name.hostname
    assert bridge.resolved_local_client_id == f"local.{bridge.resolved_client_id}"
    assert (bridge.protocol, bridge.clean_start, bridge.try_private) == (4, False, True)
    assert bridge.restart_timeout == (5.0, 30.0)
    assert bridge.topics[0].direction == "out" and bridge.topics[0].qos == 0
