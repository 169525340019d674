"""MQTT 5 enhanced authentication with SCRAM-SHA-256, end to end: ``mqlite passwd --scram``
writes the users, the broker runs the exchange, mqlite's client proves itself at CONNECT and
again while connected; every way the exchange can go wrong is refused with its code."""

from __future__ import annotations

import queue
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import mqlite.client as mqtt
from mqlite.broker import Broker, ClientInfo, Hook
from mqlite.broker.security.password_file import write_entries
from mqlite.client.enhanced_auth import ScramSha256
from mqlite.protocol import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Properties,
    ReasonCode,
)
from mqlite.protocol.scram import METHOD, ScramClient, new_credentials

from ..broker.helpers import TIMEOUT, RawClient, wait_until


def passwd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqlite.cli", "passwd", *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def scram_file(tmp_path: Path) -> Path:
    path = tmp_path / "scram"
    write_entries(str(path), {"alice": new_credentials("wonderland").encode(),
                              "bob": new_credentials("builder", 1000).encode()})
    return path


class Seen(Hook):
    def __init__(self) -> None:
        self.connected: list[ClientInfo] = []

    def on_connect(self, client: ClientInfo) -> None:
        self.connected.append(client)


class Client:
    """mqlite's MQTT 5 client on its own thread, its callbacks in a queue."""

    def __init__(self, broker: Broker, authenticator: ScramSha256 | None,
                 client_id: str = "c") -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id, protocol=mqtt.MQTTv5)
        if authenticator is not None:
            self.client.enhanced_auth(authenticator)
        self.client.on_connect = lambda c, u, f, rc, p: self.events.put(("connect", str(rc)))
        self.client.on_disconnect = lambda c, u, f, rc, p: self.events.put(("disconnect",
                                                                            str(rc)))
        self.client.on_auth = lambda c, u, rc, p: self.events.put(("auth", str(rc)))
        self.client.on_message = lambda c, u, m: self.events.put(("message", m.payload))
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.events.put(
            ("subscribe", str(codes[0])))
        self.client.connect(*broker.address)
        self.client.loop_start()

    def next(self, kind: str) -> Any:
        while True:
            got, value = self.events.get(timeout=TIMEOUT)
            if got == kind:
                return value

    def stop(self) -> None:
        self.client.loop_stop()


def test_a_scram_user_connects_and_is_who_it_proved(scram_file: Path) -> None:
    seen = Seen()
    with Broker(port=0, scram_file=str(scram_file), hooks=[seen]) as broker:
        client = Client(broker, ScramSha256("alice", "wonderland"))
        assert client.next("connect") == "Success"
        info = seen.connected[0]
        assert (info.username, info.auth_method) == ("alice", METHOD)
        client.client.subscribe("t", 1)
        assert client.next("subscribe") == "Granted QoS 1"
        client.client.publish("t", b"proved", 1)
        assert client.next("message") == b"proved"
        client.stop()


@pytest.mark.parametrize(("user", "password"), [("alice", "guess"), ("mallory", "any")])
def test_a_wrong_password_or_unknown_user_is_not_authorized(scram_file: Path, user: str,
                                                           password: str) -> None:
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        client = Client(broker, ScramSha256(user, password))
        assert client.next("connect") == "Not authorized"
        client.stop()


def test_without_scram_a_client_is_anonymous_and_refused(scram_file: Path) -> None:
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        raw = RawClient(broker.address, 5)
        assert raw.connect("plain").reason_code == ReasonCode.NOT_AUTHORIZED


def test_another_method_is_bad_authentication_method(scram_file: Path) -> None:
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        raw = RawClient(broker.address, 5)
        connack = raw.connect("x", properties=Properties(authentication_method="PLAIN"))
        assert connack.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD
    with Broker(port=0) as unconfigured:  # no SCRAM users: no SCRAM either
        raw = RawClient(unconfigured.address, 5)
        connack = raw.connect("x", properties=Properties(authentication_method=METHOD))
        assert connack.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD


def raw_first_step(broker: Broker, scram: ScramClient) -> tuple[RawClient, Auth]:
    raw = RawClient(broker.address, 5)
    raw.send(Connect(client_id="raw", protocol_version=5, properties=Properties(
        authentication_method=METHOD, authentication_data=scram.first())))
    auth = raw.receive()
    assert isinstance(auth, Auth) and auth.reason_code == ReasonCode.CONTINUE_AUTHENTICATION
    assert auth.properties.authentication_method == METHOD
    return raw, auth


def test_the_exchange_on_the_wire(scram_file: Path) -> None:
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        scram = ScramClient("bob", "builder")
        raw, auth = raw_first_step(broker, scram)
        assert b",i=1000" in (auth.properties.authentication_data or b"")
        raw.send(Auth(reason_code=ReasonCode.CONTINUE_AUTHENTICATION, properties=Properties(
            authentication_method=METHOD,
            authentication_data=scram.final(auth.properties.authentication_data or b""))))
        connack = raw.receive()
        assert isinstance(connack, Connack) and connack.reason_code == 0
        assert connack.properties.authentication_method == METHOD
        scram.verify(connack.properties.authentication_data or b"")  # the broker's proof
        raw.ping()


@pytest.mark.parametrize("wrong", ["pingreq", "other method", "reason code"])
def test_breaking_the_exchange_is_a_protocol_error(scram_file: Path, wrong: str) -> None:
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        scram = ScramClient("alice", "wonderland")
        raw, auth = raw_first_step(broker, scram)
        final = Auth(reason_code=ReasonCode.CONTINUE_AUTHENTICATION, properties=Properties(
            authentication_method=METHOD,
            authentication_data=scram.final(auth.properties.authentication_data or b"")))
        if wrong == "pingreq":
            raw.send(Pingreq())
        elif wrong == "other method":
            raw.send(replace(final, properties=replace(final.properties,
                                                       authentication_method="SCRAM-SHA-1")))
        else:
            raw.send(replace(final, reason_code=ReasonCode.RE_AUTHENTICATE))
        packets = raw.expect_closed()
        assert [p.reason_code for p in packets if isinstance(p, Connack)] == [
            ReasonCode.PROTOCOL_ERROR]


def test_reauthentication_keeps_the_connection(scram_file: Path) -> None:
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        client = Client(broker, ScramSha256("alice", "wonderland"))
        assert client.next("connect") == "Success"
        assert client.client.reauthenticate() == mqtt.MQTT_ERR_SUCCESS
        assert client.next("auth") == "Success"
        client.client.subscribe("after", 1)
        client.client.publish("after", b"still connected", 1)
        assert client.next("message") == b"still connected"
        client.stop()


@pytest.mark.parametrize(("user", "password"), [("alice", "changed"), ("bob", "builder")])
def test_failed_reauthentication_disconnects(scram_file: Path, user: str,
                                            password: str) -> None:
    """A wrong password, or proving to be someone else, ends the connection with 0x87."""
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        client = Client(broker, ScramSha256("alice", "wonderland"))
        assert client.next("connect") == "Success"
        client.client.enhanced_auth(ScramSha256(user, password))
        client.client.reauthenticate()
        assert client.next("disconnect") == "Not authorized"
        client.stop()


def test_auth_without_a_method_at_connect_is_a_protocol_error(scram_file: Path) -> None:
    with Broker(port=0, scram_file=str(scram_file), allow_anonymous=True) as broker:
        raw = RawClient(broker.address, 5)
        assert raw.connect("plain").reason_code == 0
        raw.send(Auth(reason_code=ReasonCode.RE_AUTHENTICATE, properties=Properties(
            authentication_method=METHOD, authentication_data=b"n,,n=alice,r=abc")))
        packets = raw.expect_closed()
        assert [p.reason_code for p in packets if isinstance(p, Disconnect)] == [
            ReasonCode.PROTOCOL_ERROR]


def test_new_users_after_a_reload_and_a_broken_file_keeps_the_old(scram_file: Path) -> None:
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        with scram_file.open("a") as file:
            file.write(f"carol:{new_credentials('c4rol').encode()}\n")
        broker.reload(broker.config)
        client = Client(broker, ScramSha256("carol", "c4rol"), "carol")
        assert client.next("connect") == "Success"
        client.stop()
        scram_file.write_text("carol:not an entry\n")
        broker.reload(broker.config)
        again = Client(broker, ScramSha256("alice", "wonderland"), "alice")
        assert again.next("connect") == "Success"
        again.stop()


def test_passwd_scram_adds_deletes_and_refuses_bad_input(tmp_path: Path) -> None:
    scram_file = tmp_path / "scram"
    assert passwd("--scram", "-c", "-b", str(scram_file), "alice", "wonderland").returncode == 0
    assert passwd("--scram", "-b", "-I", "1000", str(scram_file), "bob", "b").returncode == 0
    assert ":SCRAM-SHA-256$1000:" in scram_file.read_text()
    assert passwd("--scram", "-D", str(scram_file), "bob").returncode == 0
    lines = scram_file.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice"]
    assert lines[0].startswith(f"alice:{METHOD}$4096:")
    assert "wonderland" not in scram_file.read_text()
    assert scram_file.stat().st_mode & 0o777 == 0o600
    missing = passwd("--scram", "-D", str(scram_file), "bob")
    assert missing.returncode == 1 and "not in" in missing.stderr


def test_a_broken_scram_file_stops_the_daemon_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "scram"
    broken.write_text("alice:SCRAM-SHA-256$x\n")
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "--port", "0",
                           "--db", ":memory:", "--scram-file", str(broken)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and f"{broken}:1" in done.stderr


def test_reauthentication_keeps_the_session(scram_file: Path) -> None:
    """The re-authenticated connection keeps the session it had (no take-over, no new one)."""
    with Broker(port=0, scram_file=str(scram_file)) as broker:
        client = Client(broker, ScramSha256("alice", "wonderland"), "keeper")
        assert client.next("connect") == "Success"
        session = broker.core.sessions.get("keeper")
        client.client.reauthenticate()
        assert client.next("auth") == "Success"
        wait_until(lambda: broker.core.sessions.get("keeper") is session
                   and session.connection is not None)
        client.stop()
