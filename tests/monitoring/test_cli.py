"""The command line around the admin API: the daemon's --http and --admin-token-file,
``mqlite clients`` and ``mqlite sessions delete`` against a running broker, and a delete in
a stopped broker's database (refused while a broker holds it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from mqlite.broker import Broker, read_sessions
from mqlite.broker.config.listener_config import ListenerConfig

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess
from .http_helpers import get_json

TOKEN = "a-long-enough-admin-token"


def mqlite(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqlite.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False, env=env)


def test_clients_and_sessions_through_a_running_daemon(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    config = tmp_path / "mqlite.toml"
    config.write_text('[[listeners]]\nport = 0\nname = "tcp"\n\n'
                      '[[listeners]]\ntype = "http"\nport = 0\nname = "http"\n')
    db = str(tmp_path / "daemon.db")
    with BrokerProcess("-c", str(config), "--admin-token-file", str(token_file),
                       "--db", db) as daemon:
        http = listening(daemon, "http")
        tcp = listening(daemon, "tcp").split(":")
        client = RawClient((tcp[0], int(tcp[1])))
        client.connect("worker-1", clean_start=False)
        listed = mqlite("clients", "--http", http, "--admin-token-file", str(token_file))
        assert listed.returncode == 0, listed.stderr
        assert "worker-1" in listed.stdout and "1 client(s)" in listed.stdout
        refused = mqlite("clients", "--http", http)
        assert refused.returncode == 1 and "401" in refused.stderr
        deleted = mqlite("sessions", "delete", "worker-1", "--http", http,
                         "--admin-token-file", str(token_file))
        assert deleted.returncode == 0, deleted.stderr
        client.expect_closed()
        missing = mqlite("sessions", "delete", "worker-1", "--http", http,
                         "--admin-token-file", str(token_file))
        assert missing.returncode == 1 and "404" in missing.stderr
        held = mqlite("sessions", "delete", "anyone", "--db", db)
        assert held.returncode == 1 and "running broker" in held.stderr


def listening(daemon: BrokerProcess, name: str) -> str:
    """HOST:PORT of the daemon's listener ``name``, from its log."""
    line = daemon.wait_for_log(rf"listening on \S+ \({name}\)")
    match = re.search(r"listening on (\S+) ", line)
    assert match is not None
    return match[1]


def test_a_delete_in_a_stopped_brokers_database(tmp_path: Path) -> None:
    db = str(tmp_path / "stopped.db")
    with Broker(port=0, db=db) as broker:
        for client_id in ("keep", "drop"):
            RawClient(broker.address).connect(client_id, clean_start=False)
    done = mqlite("sessions", "delete", "drop", "--db", db)
    assert done.returncode == 0, done.stderr
    assert [s.client_id for s in read_sessions(db)] == ["keep"]
    again = mqlite("sessions", "delete", "drop", "--db", db)
    assert again.returncode == 1 and "no session" in again.stderr


def test_clients_needs_http() -> None:
    done = mqlite("clients")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "--http" in done.stderr


def test_the_http_flag_and_a_token_never_printed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    checked = mqlite("broker", "--http", "9911", "--admin-token-file", str(token_file),
                     "--check")
    assert checked.returncode == 0, checked.stderr
    assert 'type = "http"' in checked.stdout and "port = 9911" in checked.stdout
    assert TOKEN not in checked.stdout and "admin_token is set (not shown)" in checked.stdout
    short = tmp_path / "short"
    short.write_text("tiny")
    bad = mqlite("broker", "--admin-token-file", str(short), "--check")
    assert bad.returncode == 1 and "at least 16" in bad.stderr
    absent = mqlite("broker", "--admin-token-file", str(tmp_path / "none"), "--check")
    assert absent.returncode == 1 and "cannot read" in absent.stderr
    assert TOKEN not in absent.stderr


def test_http_default_is_loopback() -> None:
    with Broker(port=0, http="0", sys_interval=0) as broker:
        [name] = [name for name in broker.addresses if name.startswith("http")]
        assert broker.addresses[name][0] == "127.0.0.1"
        assert get_json(broker, "/health")[0] == 200


def test_reading_the_api_with_a_listener_config() -> None:
    listeners = [ListenerConfig(port=0, name="tcp"),
                 ListenerConfig(type="http", port=0, name="http")]
    with Broker(listeners=listeners, sys_interval=0, admin_token=TOKEN) as broker:
        assert get_json(broker, "/api/v1/stats", token=TOKEN)[0] == 200


def test_sessions_and_clients_take_the_brokers_configuration_file(tmp_path: Path) -> None:
    """-c FILE: the database, the http listener and the admin token come from the broker's
    own configuration, as the broker reads them."""
    from ..interop.mosquitto import free_port

    db = tmp_path / "from-config.db"
    port = free_port()
    config = tmp_path / "mqlite.toml"
    config.write_text(f'db = "{db}"\nhttp = "127.0.0.1:{port}"\nadmin_token = "{TOKEN}"\n'
                      '[[listeners]]\nport = 0\nname = "tcp"\n')
    config.chmod(0o600)
    # (the test helper would otherwise give the broker a database in memory)
    with BrokerProcess("-c", str(config), "--db", str(db)) as daemon:
        tcp = listening(daemon, "tcp").split(":")
        client = RawClient((tcp[0], int(tcp[1])))
        client.connect("configured-1", clean_start=False)
        listed = mqlite("clients", "-c", str(config))
        assert listed.returncode == 0, listed.stderr
        assert "configured-1" in listed.stdout
        client.close()
        daemon.terminate()
    sessions = mqlite("sessions", "-c", str(config), "--json")
    assert sessions.returncode == 0, sessions.stderr
    assert "configured-1" in sessions.stdout
    shown = mqlite("sessions", "show", "configured-1", "-c", str(config))
    assert shown.returncode == 0 and "configured-1" in shown.stdout, shown.stderr
    broken = mqlite("clients", "-c", str(tmp_path / "missing.toml"))
    assert broken.returncode == 1 and len(broken.stderr.splitlines()) == 1
