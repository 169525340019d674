"""``mqlite broker --workers 3``: three processes on one port (SO_REUSEPORT), each a node of
a cluster on a redis-server that the command starts itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
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


def _worker_pids(broker: BrokerProcess, count: int) -> list[int]:
    pids = []
    for number in range(1, count + 1):
        line = broker.wait_for_log(rf"worker {number} started \(pid \d+\)")
        pids.append(int(re.search(r"pid (\d+)", line)[1]))  # type: ignore[index]
    return pids


def _redis_pid(socket_path: Path) -> int:
    info = subprocess.run(["redis-cli", "-s", str(socket_path), "INFO", "server"], check=True,
                          capture_output=True, text=True, timeout=10).stdout
    return int(re.search(r"process_id:(\d+)", info)[1])  # type: ignore[index]


def _gone(pid: int) -> bool:
    """Exited (a zombie no one reaped counts: it serves nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _second_set(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "--workers", "2",
                           *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_a_killed_supervisors_workers_and_redis_end_and_no_second_set_starts_beside_them(
        tmp_path: Path) -> None:
    db = tmp_path / "mqlite.db"
    with BrokerProcess("--workers", "2", "--db", str(db), "--node-ttl", "1.5") as first:
        for number in (1, 2):
            first.wait_for_log(f"-w{number} joined")
        workers = _worker_pids(first, 2)
        redis = _redis_pid(tmp_path / "mqlite-redis.sock")
        port = str(first.address[1])
        # Beside a running set: refused, one line each, exit 1.
        other = tmp_path / "other"
        other.mkdir()
        for args, complaint in (
                (("--db", str(db), "--port", "0"), "in use by another mqlite broker"),
                (("--db", str(other / "m.db"), "--port", port), f"port {port} "),
                (("--db", str(tmp_path / "second.db"), "--port", "0"), "already answers")):
            refused = _second_set(*args)
            assert refused.returncode == 1, refused.stderr
            lines = [line for line in (refused.stdout + refused.stderr).splitlines() if line]
            assert len(lines) == 1 and complaint in lines[0], lines
        first.proc.kill()  # the supervisor only
        first.proc.wait()
        deadline = time.monotonic() + 15
        while not all(map(_gone, [*workers, redis])):
            assert time.monotonic() < deadline, "a worker or Redis outlived its supervisor"
            time.sleep(0.05)  # processes of another parent: nothing to wait on
    # Now a new set takes the database and the port.
    with BrokerProcess("--workers", "2", "--db", str(db), "--port", port,
                       "--node-ttl", "1.5") as again:
        for number in (1, 2):  # the port hands a connection to either worker
            again.wait_for_log(f"-w{number} joined")
        client = RawClient(again.address, version=5)
        assert client.connect("after", protocol_version=5).reason_code == 0
        client.close()
        again.proc.send_signal(signal.SIGTERM)
        assert again.proc.wait(30) == 0
