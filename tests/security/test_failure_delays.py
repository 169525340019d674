"""Repeated authentication failures from one address: each refusal is held longer (on a timer,
the broker serving everyone else meanwhile); a success starts the address afresh."""

from __future__ import annotations

import time
from pathlib import Path

from mqlite.broker import Broker
from mqlite.broker.security.failure_delays import FIRST_DELAY, FailureDelays
from mqlite.protocol import Connack, Connect

from ..broker.helpers import RawClient
from .test_password_file import mqlite_passwd


def refused_after(broker: Broker) -> float:
    """Seconds from a wrong-password CONNECT to its CONNACK 5."""
    client = RawClient(broker.address)
    started = time.monotonic()
    client.send(Connect(client_id="guess", username="carol", password=b"wrong"))
    connack = client.receive(timeout=30)
    assert isinstance(connack, Connack) and connack.reason_code == 5
    client.expect_closed()
    return time.monotonic() - started


def test_refusals_are_held_longer_while_others_are_served(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    assert mqlite_passwd("-c", "-b", str(passwords), "carol", "s3cret").returncode == 0
    with Broker(port=0, password_file=str(passwords), sys_interval=0) as broker:
        refused_after(broker)  # the first is answered at once
        other = RawClient(broker.address)
        assert other.connect(client_id="ok", username="carol",
                             password=b"s3cret").reason_code == 0
        # That success forgot the failure: the next one is answered at once again.
        refused_after(broker)
        held = RawClient(broker.address)
        held.send(Connect(client_id="guess2", username="carol", password=b"wrong"))
        other.ping()  # while that refusal is held, other clients are served
        started = time.monotonic()
        connack = held.receive(timeout=30)
        assert isinstance(connack, Connack) and connack.reason_code == 5
        assert time.monotonic() - started > FIRST_DELAY / 2
        assert refused_after(broker) >= 2 * FIRST_DELAY, "the next is held twice as long"


def test_the_delays_double_to_a_cap_and_are_per_address() -> None:
    delays = FailureDelays()
    waits = [delays.failed("10.0.0.1", float(n)) for n in range(10)]
    assert waits[:4] == [0.0, FIRST_DELAY, 2 * FIRST_DELAY, 4 * FIRST_DELAY]
    assert max(waits) == waits[-1] <= 10.0
    assert delays.failed("10.0.0.2", 10.0) == 0.0
    delays.succeeded("10.0.0.1")
    assert delays.failed("10.0.0.1", 11.0) == 0.0
    assert delays.failed("10.0.0.1", 11.0 + 601) == 0.0, "forgotten after ten quiet minutes"
