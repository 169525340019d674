"""Authentication hooks that block (slow hashes, network services) run on worker threads: the
loop goes on serving every other client meanwhile, the waiting CONNECT's later packets are
handled after its CONNACK and in order, and an answer that never comes is a refusal at the
connect timeout."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from mqlite.broker import Broker, ClientInfo, Hook
from mqlite.broker.security.password_file import PasswordHash, new_hash, write_entries
from mqlite.protocol import (
    Connack,
    ConnackReturnCode,
    Connect,
    Publish,
    ReasonCode,
    encode,
)

from ..broker.helpers import TIMEOUT, RawClient, wait_until
from ..conftest import BrokerFactory


class Gate(Hook):
    """Blocks each authentication until the test opens the gate; records the thread."""

    blocking = True

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.asked = threading.Event()
        self.threads: list[str] = []
        self.quick: list[str | None] = []

    def quick_answer(self, client: ClientInfo, username: str | None,
                     password: bytes | None) -> bool | None:
        self.quick.append(username)
        return True if username == "known" else None

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        self.threads.append(threading.current_thread().name)
        self.asked.set()
        assert self.opened.wait(TIMEOUT)
        return password == b"right"


def test_the_loop_serves_others_while_a_hook_blocks(make_broker: BrokerFactory) -> None:
    gate = Gate()
    broker = make_broker(hooks=[gate])
    waiting = RawClient(broker.address)
    # CONNECT and a PUBLISH in one write: the PUBLISH must wait for the CONNACK.
    waiting.send_bytes(encode(Connect(client_id="waiting", username="u", password=b"right"),
                              4)
                       + encode(Publish(topic="t/1", payload=b"after connack"), 4))
    assert gate.asked.wait(TIMEOUT)
    other = RawClient(broker.address)
    assert other.connect("other", username="known").reason_code == 0  # quick: no thread
    assert other.subscribe("t/#").reason_codes == [0]
    other.ping()  # a round trip while the gate is shut
    gate.opened.set()
    connack = waiting.receive()
    assert isinstance(connack, Connack) and connack.reason_code == 0
    message = other.receive()
    assert isinstance(message, Publish) and message.payload == b"after connack"
    assert gate.threads and all(name.startswith("mqlite-auth") for name in gate.threads)
    assert gate.quick == ["u", "known"]


def test_a_blocking_hook_can_refuse(make_broker: BrokerFactory, version: int) -> None:
    gate = Gate()
    gate.opened.set()
    broker = make_broker(hooks=[gate])
    client = RawClient(broker.address, version)
    client.send(Connect(client_id="c", protocol_version=version, username="u",
                        password=b"wrong"))
    packets = client.expect_closed()
    expected = ReasonCode.NOT_AUTHORIZED if version == 5 else ConnackReturnCode.NOT_AUTHORIZED
    assert [p.reason_code for p in packets if isinstance(p, Connack)] == [expected]


class Silent(Hook):
    """Never answers until released (a service that hangs)."""

    blocking = True

    def __init__(self) -> None:
        self.release = threading.Event()

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        self.release.wait(30)
        return True


def test_no_answer_within_the_connect_timeout_is_server_unavailable(
        make_broker: BrokerFactory, version: int) -> None:
    hook = Silent()
    broker = make_broker(hooks=[hook], connect_timeout=0.3)
    try:
        client = RawClient(broker.address, version)
        client.send(Connect(client_id="c", protocol_version=version))
        packets = client.expect_closed()
        expected = (ReasonCode.SERVER_UNAVAILABLE if version == 5
                    else ConnackReturnCode.SERVER_UNAVAILABLE)
        assert [p.reason_code for p in packets if isinstance(p, Connack)] == [expected]
    finally:
        hook.release.set()


def test_a_client_gone_before_the_answer_costs_nothing(make_broker: BrokerFactory) -> None:
    gate = Gate()
    broker = make_broker(hooks=[gate])
    client = RawClient(broker.address)
    client.send(Connect(client_id="gone", username="u", password=b"right"))
    assert gate.asked.wait(TIMEOUT)
    client.close()  # not read while it waits: the broker learns of it after the answer
    gate.opened.set()
    wait_until(lambda: not broker.connections, what="the connection closed")
    again = RawClient(broker.address)
    assert again.connect("gone", username="known").reason_code == 0
    assert "gone" in broker.core.sessions


def test_a_hook_that_raises_in_its_thread_refuses(make_broker: BrokerFactory) -> None:
    class Broken(Hook):
        blocking = True

        def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                    password: bytes | None) -> bool:
            raise RuntimeError("the service is down")

    broker = make_broker(hooks=[Broken()])
    client = RawClient(broker.address)
    client.send(Connect(client_id="c"))
    packets = client.expect_closed()
    assert [p.reason_code for p in packets if isinstance(p, Connack)] == [5]


def test_the_password_file_hashes_once_per_pair_off_the_loop(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    write_entries(str(passwords), {"alice": new_hash("secret", 50_000).encode()})
    with Broker(port=0, password_file=str(passwords)) as broker:
        [authentication] = [hook for hook in broker.core.hooks.registered if hook.blocking]
        checks: list[str] = []
        original = authentication.on_connect_authenticate

        def recording(client: ClientInfo, username: str | None,
                      password: bytes | None) -> bool:
            checks.append(threading.current_thread().name)
            return original(client, username, password)

        authentication.on_connect_authenticate = recording  # type: ignore[method-assign]
        for attempt in range(3):
            client = RawClient(broker.address)
            connack = client.connect(f"c{attempt}", username="alice", password=b"secret")
            assert connack.reason_code == 0
            client.close()
        # Hashed once, on a worker; the two reconnects were answered from the cache.
        assert len(checks) == 1 and checks[0].startswith("mqlite-auth")
        wrong = RawClient(broker.address)
        assert wrong.connect("w", username="alice", password=b"nope").reason_code == 5
        assert len(checks) == 2  # a wrong password is never cached as right


def test_a_cheap_hash_is_checked_on_the_loop(tmp_path: Path) -> None:
    """A $6$ entry (one SHA-512) costs less than a worker thread's round trip."""
    passwords = tmp_path / "passwords"
    salt = b"0123456789ab"
    entry = PasswordHash("6", 1, salt, hashlib.sha512(b"hunter2" + salt).digest())
    write_entries(str(passwords), {"bob": entry.encode()})
    with Broker(port=0, password_file=str(passwords)) as broker:
        [authentication] = [hook for hook in broker.core.hooks.registered if hook.blocking]
        on_worker: list[str | None] = []

        def recording(client: ClientInfo, username: str | None,
                      password: bytes | None) -> bool:
            on_worker.append(username)
            return False

        authentication.on_connect_authenticate = recording  # type: ignore[method-assign]
        right = RawClient(broker.address)
        assert right.connect("r", username="bob", password=b"hunter2").reason_code == 0
        wrong = RawClient(broker.address)
        assert wrong.connect("w", username="bob", password=b"nope").reason_code == 5
        assert on_worker == []
