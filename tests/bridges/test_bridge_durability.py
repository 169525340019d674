"""The bridge durability test of bench/bridge_durability.py, with mqlite as the edge: 10,000
messages, the edge killed with SIGKILL five times at random moments, the remote mosquitto away
across one of the kills; every message the edge acknowledged reaches the remote subscriber, at
QoS 2 exactly once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from bench.bridge_durability import run
from mqlite.client import CallbackAPIVersion, Client

from ..broker.helpers import PahoClient
from ..broker_process import BrokerProcess
from ..config.test_config_files import write
from ..interop.mosquitto import TIMEOUT, free_port, require_mosquitto, start_mosquitto

require_mosquitto()


@pytest.mark.slow
def test_every_acknowledged_message_crosses_the_bridge_through_kill_9() -> None:
    result = run("mqlite", messages=10_000, kills=5)
    assert result["acknowledged"] == 10_000
    assert result["lost"] == 0, result


@pytest.mark.slow
def test_qos_2_stays_exactly_once_through_kill_9() -> None:
    """At QoS 2 end to end (the publisher's session resends its unfinished flows), every
    message arrives, and once."""
    result = run("mqlite", messages=10_000, kills=5, qos=2)
    assert result["acknowledged"] == 10_000
    assert (result["lost"], result["duplicates"]) == (0, 0), result


@pytest.mark.slow
def test_incoming_qos_2_stays_exactly_once_through_kill_9(tmp_path: Path) -> None:
    """The other way: mosquitto's QoS 2 messages come in through the bridge while mqlite is
    killed in the middle of them; its subscriber gets each once. (The local broker records
    each message with its remote packet id before the PUBREC goes back.)"""
    # mosquitto's default queue limit (1,000 a client) would drop what the bridge has not
    # taken yet of the 2,000 published at once: unlimited, so that only mqlite is tested.
    process, remote_port = start_mosquitto(tmp_path, "max_queued_messages 0\n")
    port = free_port()
    config = write(tmp_path / "edge.toml", f"""
[[listeners]]
port = {port}
[[bridges]]
name = "edge"
address = "127.0.0.1:{remote_port}"
protocol = 5
restart_timeout = [0.05, 0.2]
topics = [{{ pattern = "cmd/#", direction = "in", qos = 2 }}]
""")
    database = str(tmp_path / "edge.db")
    received: list[bytes] = []
    arrived = threading.Condition()

    def collect(_client: Any, _userdata: Any, message: Any) -> None:
        with arrived:
            received.append(message.payload)
            arrived.notify_all()

    def wait_for(count: int) -> None:
        with arrived:
            assert arrived.wait_for(lambda: len(set(received)) >= count, timeout=60), \
                f"{len(set(received))} of {count}"

    edge = BrokerProcess("-c", config, "--db", database)
    subscriber = Client(CallbackAPIVersion.VERSION2, client_id="local-sub", clean_session=False)
    try:
        edge.wait_for_log("bridge edge connected")
        edge.discard_log()
        subscriber.on_message = collect
        subscriber.on_connect = lambda c, *_: c.subscribe("cmd/#", 2)
        subscriber.connect("127.0.0.1", port)
        subscriber.loop_start()
        publisher = PahoClient(("127.0.0.1", remote_port), client_id="remote-pub")
        publisher.connect()
        total = 2_000
        for number in range(total):
            publisher.client.publish("cmd/n", b"%d" % number, qos=2)
        wait_for(total // 4)
        edge.proc.kill()
        edge.proc.wait()
        edge = BrokerProcess("-c", config, "--db", database)
        edge.discard_log()
        wait_for(total)
        with arrived:
            assert sorted(received) == sorted(b"%d" % n for n in range(total))
    finally:
        subscriber.loop_stop()
        edge.terminate()
        process.terminate()
        process.wait(TIMEOUT)
