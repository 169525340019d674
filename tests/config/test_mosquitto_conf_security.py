"""A mosquitto.conf lets in whom mosquitto would: the same file run by mosquitto and by mqlite
gives an anonymous client the same answer, and an option that decides who gets in and that
mqlite does not implement stops the start-up instead of being skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mqlite.broker.config.config_file import ConfigError, load

from ..broker_process import BrokerProcess
from ..interop.mosquitto import TIMEOUT, free_port, require_mosquitto, wait_listening
from .test_config_files import broker_cli, write

require_mosquitto()


def _anonymous_publish(port: int) -> int:
    """mosquitto_pub's exit code: 0, or the CONNACK's refusal (5: not authorised)."""
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "a/b",
                           "-m", "hello", "-q", "1"], capture_output=True,
                          timeout=TIMEOUT).returncode


def _mosquitto_answer(tmp_path: Path, template: str) -> int:
    port = free_port()
    config = write(tmp_path / "theirs.conf", template.format(port=port))
    process = subprocess.Popen(["mosquitto", "-c", config], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process)
        return _anonymous_publish(port)
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def _mqlite_answer(tmp_path: Path, template: str) -> int:
    port = free_port()
    config = write(tmp_path / "ours.conf", template.format(port=port))
    with BrokerProcess("-c", config) as broker:
        answer = _anonymous_publish(port)
        assert broker.terminate() == 0
    return answer


@pytest.mark.parametrize("template", [
    "listener {port}\n",
    "listener {port}\nallow_anonymous true\n",
    "port {port}\n",
    "per_listener_settings true\nlistener {port}\n",
    "per_listener_settings true\nlistener {port}\nallow_anonymous true\n",
])
def test_an_anonymous_client_gets_mosquittos_answer(tmp_path: Path, template: str) -> None:
    assert _mqlite_answer(tmp_path, template) == _mosquitto_answer(tmp_path, template)


def test_a_listener_alone_refuses_anonymous_clients(tmp_path: Path) -> None:
    settings = load(write(tmp_path / "m.conf", "listener 1883\n"))
    assert settings.values["allow_anonymous"] is False
    assert _mqlite_answer(tmp_path, "listener {port}\n") == 5  # not authorised
    # Without a listener: loopback only, anonymous clients let in, as mosquitto does.
    assert "allow_anonymous" not in load(write(tmp_path / "n.conf", "max_qos 2\n")).values


@pytest.mark.parametrize("option", [
    "plugin /usr/lib/mosquitto_dynamic_security.so",
    "auth_plugin /usr/lib/auth.so",
    "global_plugin /usr/lib/x.so",
    "plugin_opt_config_file /etc/mosquitto/dynsec.json",
    "auth_opt_backends mysql",
    "psk_file /etc/mosquitto/psk",
    "psk_hint broker",
    "clientid_prefixes secure-",
    "use_username_as_clientid true",
])
def test_an_option_deciding_who_gets_in_stops_the_start(tmp_path: Path, option: str) -> None:
    path = write(tmp_path / "m.conf", f"listener 0 127.0.0.1\n{option}\n")
    name = option.split()[0]
    with pytest.raises(ConfigError, match=f"m.conf:2: {name} is not supported"):
        load(path)
    done = broker_cli("-c", path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and f"m.conf:2: {name}" in lines[0], lines
