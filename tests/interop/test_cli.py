"""`mqlite broker` as a process: port 0, logging, SIGTERM and SIGINT, restart at once."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mqlite.protocol import Disconnect, ReasonCode

from ..broker.helpers import PahoClient, RawClient
from ..broker_process import BrokerProcess


def test_port_0_is_logged_and_served() -> None:
    with BrokerProcess() as broker:
        client = PahoClient(broker.address, client_id="cli-test")
        assert client.connect()[1] == 0
        client.disconnect()
        line = broker.wait_for_log("client cli-test disconnected")
        assert "MQTT 3.1.1" in line and "client disconnected" in line
        assert broker.terminate() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_and_restart_binds_at_once(signum: int) -> None:
    with BrokerProcess() as broker:
        raw = RawClient(broker.address, version=5)
        raw.connect(client_id="v5")
        broker.wait_for_log("client v5 connected")
        broker.proc.send_signal(signum)
        assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.SERVER_SHUTTING_DOWN)]
        assert broker.terminate() == 0
        port = broker.address[1]
    with BrokerProcess("--port", str(port)) as again:  # SO_REUSEADDR: no wait for TIME_WAIT
        assert again.address[1] == port
        assert again.terminate() == 0


def test_port_in_use_is_a_clear_error() -> None:
    with BrokerProcess() as broker:
        done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "--port",
                               str(broker.address[1]), "--db", ":memory:"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 1
        assert "cannot listen on" in done.stderr
        broker.terminate()


def test_listens_on_ipv6_and_all_interfaces() -> None:
    with BrokerProcess("--host", "::") as broker:
        client = RawClient(("127.0.0.1", broker.address[1]))
        client.connect()
        client.ping()
        broker.terminate()


def test_help_lists_the_broker_command() -> None:
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "--help"], capture_output=True,
                          text=True, timeout=30)
    assert "broker" in done.stdout


@pytest.mark.parametrize("args,names", [
    (["--db", "/nonexistent/dir/x.db"], "/nonexistent/dir"),
    (["--db", "/sys/mqlite.db"], "/sys/mqlite.db"),  # unwritable, even for root
    (["--port", "70000"], "--port"),
    (["--port", "-1"], "--port"),
    (["--max-inflight", "0"], "--max-inflight"),
    (["--max-packet-size", "10"], "--max-packet-size"),
    (["--max-queued-messages", "0"], "--max-queued-messages"),
    (["--max-queued-bytes", "0"], "--max-queued-bytes"),
    (["--max-keepalive", "70000"], "--max-keepalive"),
    (["--connect-timeout", "0"], "--connect-timeout"),
    (["--connect-timeout", "soon"], "--connect-timeout"),
    (["--session-expiry", "0"], "--session-expiry"),
    (["--sync", "fast"], "--sync"),
    (["--no-such-flag"], "--no-such-flag"),
], ids=lambda value: "_".join(value) if isinstance(value, list) else None)
def test_bad_start_up_is_one_line_and_exit_code_1(args: list[str], names: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", *args],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert names in output
    if "--port" in args or "--max" in args[0]:
        assert "from " in output and " to " in output  # the allowed range is named


def test_db_naming_a_directory_is_refused_without_a_stray_lock(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "--db", "data"],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 1
    assert "is a directory" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_lock_file_is_private(tmp_path: Path) -> None:
    with BrokerProcess("--db", str(tmp_path / "m.db")) as broker:
        assert (tmp_path / "m.db.lock").stat().st_mode & 0o777 == 0o600
        broker.terminate()


def test_sighup_is_logged_and_ignored() -> None:
    with BrokerProcess() as broker:
        client = PahoClient(broker.address, client_id="survivor", version=5)
        client.connect()
        broker.proc.send_signal(signal.SIGHUP)
        broker.wait_for_log("SIGHUP received")
        client.subscribe("t", qos=1)
        client.publish("t", b"still here", qos=1)
        assert client.message().payload == b"still here"
        assert broker.proc.poll() is None
        assert broker.terminate() == 0
