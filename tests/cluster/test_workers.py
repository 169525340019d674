"""``mqlite broker --workers 3``: three processes on one port (SO_REUSEPORT), each a node of
a cluster on a redis-server that the command starts itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mqlite.protocol import Disconnect, Publish

from ..broker.helpers import PahoClient, RawClient
from ..broker_process import BrokerProcess

pytestmark = pytest.mark.slow


def _owners(socket_path: str) -> Counter[str]:
    """How many client ids each node holds, from the owner keys in Redis."""
    script = ("local r = {} for _, k in ipairs(redis.call('KEYS', 'mq:cl:*')) do "
              "r[#r + 1] = redis.call('GET', k) end return r")
    out = subprocess.run(["redis-cli", "-s", socket_path, "EVAL", script, "0"], check=True,
                         capture_output=True, text=True, timeout=10).stdout
    return Counter(line.split("|")[0] for line in out.split())


def test_three_workers_share_a_port_and_act_as_one_broker(tmp_path: Path) -> None:
    db = tmp_path / "mqlite.db"
    with BrokerProcess("--workers", "3", "--db", str(db), "--node-ttl", "1.5") as broker:
        for number in (1, 2, 3):
            broker.wait_for_log(f"-w{number} joined")
        broker.discard_log()  # 300 clients' log lines would fill the pipe
        # The workers share one log; each line says whose it is.
        assert any("-w2] mqlite.cluster: cluster: node" in line for line in broker.log)
        clients = []
        for index in range(300):
            client = RawClient(broker.address, version=5)
            client.connect(f"spread-{index}", protocol_version=5)
            client.subscribe(f"wk/{index}", qos=1)
            clients.append(client)
        owners = _owners(str(tmp_path / "mqlite-redis.sock"))
        assert sum(owners.values()) == 300
        assert len(owners) == 3 and min(owners.values()) > 0, owners  # every worker got some

        # One publisher reaches every subscriber, most of them on other workers.
        publisher = PahoClient(broker.address, client_id="spread-publisher", version=5)
        publisher.connect()
        for index in range(300):
            while publisher.publish(f"wk/{index}", b"to you", qos=1) != 0:
                pass  # the route is on its way from the subscriber's worker
        for index, client in enumerate(clients):
            message = client.receive()
            assert isinstance(message, Publish) and message.topic == f"wk/{index}"
        publisher.disconnect()

        # The same client id connecting again takes the first connection over, on
        # whichever worker each landed.
        first = clients[0]
        RawClient(broker.address, version=5).connect("spread-0", protocol_version=5)
        closing = first.expect_closed()
        assert any(isinstance(p, Disconnect) and p.reason_code == 0x8E for p in closing)

        broker.proc.send_signal(signal.SIGTERM)
        assert broker.proc.wait(30) == 0
    assert not (tmp_path / "mqlite-redis.sock").exists()  # the Redis it started is stopped
    # The workers' sessions are in that Redis (so that they move between workers), not in
    # a database of each worker's.
    assert not list(tmp_path.glob("mqlite-w*.db"))


def test_workers_without_redis_server_installed_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mqlite.cli", "broker", "--workers", "2", "--db",
         str(tmp_path / "m.db")], capture_output=True, text=True, timeout=30,
        env={**os.environ, "PATH": str(tmp_path)}, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "redis-server" in result.stderr and len(result.stderr.splitlines()) == 1
