"""Every example runs to completion and shows what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mqlite.broker import Broker

ROOT = Path(__file__).resolve().parent.parent


def test_decode_stream_example() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "decode_stream.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["Connect", "Subscribe", "Publish"]
    assert lines[3].startswith("rejected:") and "0x81" in lines[3]


def run_example(name: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def broker_args(broker: Broker) -> list[str]:
    host, port = broker.address
    return ["--host", host, "--port", str(port)]


def test_select_loop_example(broker: Broker) -> None:
    lines = run_example("select_loop.py", *broker_args(broker))
    assert lines == [f"examples/select: message {n}" for n in range(3)] + ["disconnected"]


def test_asyncio_loop_example(broker: Broker) -> None:
    lines = run_example("asyncio_loop.py", *broker_args(broker))
    assert lines[0] == "subscribed: ['Granted QoS 1']"
    assert [line.split(": ")[1] for line in lines[4:]] == [f"reading {n}" for n in range(3)]


def test_persistent_subscriber_example(broker: Broker) -> None:
    lines = run_example("persistent_subscriber.py", *broker_args(broker))
    assert lines == ["subscriber connected, session present: False",
                     "subscriber connected, session present: True"] + \
        [f"received: sent while away {n}" for n in range(3)]


def test_msgpack_example(broker: Broker) -> None:
    lines = run_example("msgpack_payloads.py", *broker_args(broker))
    assert lines == ["content type: application/msgpack",
                     "object: {'sensor': 'kitchen', 'celsius': 21.5, 'history': [20.9, 21.2]}"]


def test_embedded_broker_example(tmp_path: Path) -> None:
    lines = run_example("embedded_broker.py", "--db", str(tmp_path / "sessions.db"))
    assert lines[0].startswith("broker listening on 127.0.0.1:")
    assert lines[1:] == ["examples/embedded: hello from inside (retained: True)",
                         "broker stopped"]
    assert (tmp_path / "sessions.db").exists()


def test_hooks_example() -> None:
    assert run_example("hooks.py") == ["wrong password: Not authorized",
                                       "right password: Success",
                                       "received on site/kitchen/temp: 21.5"]


def test_http_auth_hook_example() -> None:
    assert run_example("http_auth_hook.py") == ["wrong password: Not authorized",
                                                "right password: Success",
                                                "reconnect: Success",
                                                "requests to the service: 2"]


def test_acl_hook_example() -> None:
    assert run_example("acl_hook.py") == [
        "subscribe commands/pump-1/#: Granted QoS 1",
        "subscribe commands/pump-2/#: Not authorized",
        "publish devices/pump-1/flow: No matching subscribers",
        "publish devices/pump-2/flow: Not authorized",
        "received commands/pump-1/start: now",
    ]
