"""`mqlite broker` as a process: port 0, logging, SIGTERM and SIGINT, restart at once."""

from __future__ import annotations

import signal
import subprocess
import sys

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
