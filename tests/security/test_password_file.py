"""Authentication with mosquitto's password file: files made by Debian's mosquitto_passwd work
in mqlite and files made by `mqlite passwd` work in mosquitto; a wrong password or an
anonymous client gets exactly what mosquitto gives; allow_anonymous's default; per listener."""

from __future__ import annotations

import base64
import hashlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mqlite.broker import Broker
from mqlite.broker.config.listener_config import ListenerConfig
from mqlite.protocol import Connack, Connect

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess
from ..interop.mosquitto import free_port, require_mosquitto

TIMEOUT = 10


def mqlite_passwd(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqlite.cli", "passwd", *args],
                          capture_output=True, text=True, timeout=30, input=stdin)


def pub(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """mosquitto_pub; its exit code is the CONNACK code when refused."""
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "t",
                           "-m", "m", *args], capture_output=True, text=True, timeout=TIMEOUT)


def mqlite_broker(tmp_path: Path, passwords: Path, extra: str = "") -> BrokerProcess:
    config = tmp_path / "mqlite.toml"
    config.write_text(f'sys_interval = 0\npassword_file = "{passwords}"\n{extra}\n'
                      "[[listeners]]\nport = 0\n")
    return BrokerProcess("-c", str(config))


def mosquitto_broker(tmp_path: Path, passwords: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    # user root: as root mosquitto would drop to the mosquitto user, who cannot read a 0600
    # file of root's.
    config.write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
                      f"password_file {passwords}\n")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:  # listening yet? (mosquitto_pub's exit code does not tell a refused connection)
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            assert process.poll() is None, "mosquitto exited"
            assert time.monotonic() < deadline, "mosquitto did not start listening"
            time.sleep(0.05)  # polling a starting process's port: nothing to wait on


CASES = [  # (mosquitto_pub arguments, expected exit code: 0, or the CONNACK code)
    (["-u", "carol", "-P", "s3cret"], 0),
    (["-u", "carol", "-P", "wrong"], 5),
    (["-u", "nobody", "-P", "s3cret"], 5),
    ([], 5),  # anonymous: allow_anonymous is false once a password file is configured
    (["-V", "mqttv5", "-u", "carol", "-P", "wrong"], 135),
    (["-V", "mqttv5", "-u", "carol", "-P", "s3cret"], 0),
]


def test_mosquitto_passwd_files_work_in_mqlite_as_in_mosquitto(tmp_path: Path) -> None:
    require_mosquitto()
    passwords = tmp_path / "passwd"
    made = subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "carol", "s3cret"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert made.returncode == 0, made.stderr
    passwords.chmod(0o600)
    mosquitto, port = mosquitto_broker(tmp_path, passwords)
    try:
        theirs = [pub(port, *args) for args, _ in CASES]
    finally:
        mosquitto.terminate()
        mosquitto.wait(TIMEOUT)
    with mqlite_broker(tmp_path, passwords) as broker:
        ours = [pub(broker.address[1], *args) for args, _ in CASES]
        broker.terminate()
    for (args, code), mine, reference in zip(CASES, ours, theirs, strict=True):
        assert reference.returncode == code, (args, reference.stderr)
        assert (mine.returncode, mine.stderr) == (reference.returncode, reference.stderr), args
    assert "s3cret" not in "".join(broker.log) and "wrong" not in "".join(broker.log)
    assert any("not authorized: client" in line and "'carol'" in line for line in broker.log)


def test_mqlite_passwd_files_work_in_mosquitto(tmp_path: Path) -> None:
    require_mosquitto()
    passwords = tmp_path / "passwd"
    assert mqlite_passwd("-c", "-b", str(passwords), "carol", "s3cret").returncode == 0
    assert passwords.stat().st_mode & 0o777 == 0o600
    assert passwords.read_text().startswith("carol:$7$101$")
    mosquitto, port = mosquitto_broker(tmp_path, passwords)
    try:
        for args, code in CASES:
            assert pub(port, *args).returncode == code, args
    finally:
        mosquitto.terminate()
        mosquitto.wait(TIMEOUT)


def test_mqlite_passwd_adds_deletes_upgrades_and_refuses(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    assert mqlite_passwd("-b", str(passwords), "a", "x").returncode == 1, "no file without -c"
    assert mqlite_passwd("-c", "-b", str(passwords), "a", "x").returncode == 0
    assert mqlite_passwd("-b", str(passwords), "b", "y").returncode == 0
    assert mqlite_passwd("-D", str(passwords), "a").returncode == 0
    assert [line.split(":")[0] for line in passwords.read_text().splitlines()] == ["b"]
    done = mqlite_passwd("-D", str(passwords), "ghost")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "ghost" in done.stderr
    plain = tmp_path / "plain"
    plain.write_text("u1:pw1\nu2:pw2\n")
    assert mqlite_passwd("-U", str(plain)).returncode == 0
    with Broker(port=0, password_file=str(plain), sys_interval=0) as broker:
        ok = RawClient(broker.address)
        assert ok.connect(client_id="c1", username="u2", password=b"pw2").reason_code == 0


def sha512_entry(user: str, password: str) -> str:
    salt = b"0123456789ab"
    digest = hashlib.sha512(password.encode() + salt).digest()
    return f"{user}:$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}\n"


@pytest.mark.parametrize(("version", "code"), [(4, 5), (5, 0x87)])
def test_refusal_codes_and_the_older_sha512_entries(tmp_path: Path, version: int,
                                                    code: int) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text(sha512_entry("old", "timer"))
    passwords.chmod(0o600)
    with Broker(port=0, password_file=str(passwords), sys_interval=0) as broker:
        good = RawClient(broker.address, version=version)
        assert good.connect(client_id="g", username="old", password=b"timer",
                            protocol_version=version).reason_code == 0
        for fields in ({"username": "old", "password": b"wrong"}, {}):
            bad = RawClient(broker.address, version=version)
            bad.send(Connect(client_id="b", protocol_version=version, **fields))
            connack = bad.receive()
            assert isinstance(connack, Connack) and connack.reason_code == code
            bad.expect_closed()


def test_per_listener_settings(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    assert mqlite_passwd("-c", "-b", str(passwords), "carol", "s3cret").returncode == 0
    listeners = [ListenerConfig(port=0, name="locked", password_file=str(passwords)),
                 ListenerConfig(port=0, name="open")]
    with Broker(listeners=listeners, per_listener_settings=True, sys_interval=0) as broker:
        locked = RawClient(broker.addresses["locked"])
        locked.send(Connect(client_id="anon"))
        connack = locked.receive()
        assert isinstance(connack, Connack) and connack.reason_code == 5
        opened = RawClient(broker.addresses["open"])  # nothing authenticates there
        assert opened.connect(client_id="anon").reason_code == 0


def test_a_changed_password_file_is_read_on_sighup(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    assert mqlite_passwd("-c", "-b", str(passwords), "carol", "s3cret").returncode == 0
    with mqlite_broker(tmp_path, passwords) as broker:
        port = broker.address[1]
        first = RawClient(("127.0.0.1", port))
        assert first.connect(client_id="one", username="carol",
                             password=b"s3cret").reason_code == 0
        assert mqlite_passwd("-b", str(passwords), "dave", "n3w").returncode == 0
        broker.proc.send_signal(signal.SIGHUP)
        broker.wait_for_log("SIGHUP received: reloading")
        for _ in range(200):  # each refused attempt is a full broker round trip
            client = RawClient(("127.0.0.1", port))
            if client.connect(client_id="two", username="dave",
                              password=b"n3w").reason_code == 0:
                break
        else:
            raise AssertionError("dave was never accepted after the reload")
        first.ping()  # still connected
        broker.terminate()


def test_a_missing_password_file_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "--password-file",
                           str(tmp_path / "missing"), "--db", ":memory:"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "cannot read password file" in done.stderr


def test_allow_anonymous_alone_installs_no_hook() -> None:
    """Nothing to check: the hot path stays hook-free, and every client is let in."""
    with Broker(port=0, allow_anonymous=True, sys_interval=0) as broker:
        assert not broker.core.hooks.active
        client = RawClient(broker.address)
        assert client.connect(client_id="u", username="any").reason_code == 0
    with Broker(port=0, allow_anonymous=False, sys_interval=0) as closed:
        assert closed.core.hooks.active
        refused = RawClient(closed.address)
        assert refused.connect(client_id="a").reason_code == 5
