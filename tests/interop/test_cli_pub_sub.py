"""``mqlite pub`` / ``mqlite sub`` side by side with mosquitto_pub / mosquitto_sub: same flags,
same output, same exit codes, so shell scripts switch over."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from mqlite.broker import Broker

from ..broker.helpers import wait_until

if not shutil.which("mosquitto_pub"):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs mosquitto-clients installed (see .ci/run)")
    pytest.skip("mosquitto-clients is not installed", allow_module_level=True)

MQLITE = [sys.executable, "-m", "mqlite.cli"]


def tool(kind: str, name: str) -> list[str]:
    return [f"mosquitto_{name}"] if kind == "mosquitto" else [*MQLITE, name]


def address(broker: Broker) -> list[str]:
    host, port = broker.address
    return ["-h", host, "-p", str(port)]


def subscriptions(broker: Broker) -> int:
    return sum(len(s.subscriptions) for s in broker.core.sessions.values())


@pytest.mark.parametrize("version", ["311", "5"])
def test_both_subscribers_print_the_same(broker: Broker, version: str) -> None:
    args = ["-V", version, "-q", "1", "-t", "cli/+", "-t", "other", "-C", "4", "-v"]
    subs = {kind: subprocess.Popen([*tool(kind, "sub"), *address(broker), *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for kind in ("mosquitto", "mqlite")}
    wait_until(lambda: subscriptions(broker) >= 4, what="both subscribers")
    subprocess.run([*tool("mqlite", "pub"), *address(broker), "-V", version, "-q", "2",
                    "-t", "cli/lines", "-l"], input=b"first\nsecond line\n", check=True,
                   timeout=30)
    subprocess.run([*tool("mqlite", "pub"), *address(broker), "-t", "other", "-n", "-r"],
                   check=True, timeout=30)
    subprocess.run([*tool("mosquitto", "pub"), *address(broker), "-t", "cli/m", "-m", "mm"],
                   check=True, timeout=30)
    outputs = {kind: sub.communicate(timeout=30)[0] for kind, sub in subs.items()}
    assert outputs["mosquitto"] == (b"cli/lines first\ncli/lines second line\n"
                                     b"other (null)\ncli/m mm\n")
    assert outputs["mqlite"] == outputs["mosquitto"]


def test_file_payload_and_retained(broker: Broker, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "payload.bin")
    with open(path, "wb") as handle:
        handle.write(b"\x00binary\xff")
    subprocess.run([*tool("mqlite", "pub"), *address(broker), "-t", "cli/file", "-f", path,
                    "-r", "-q", "1"], check=True, timeout=30)
    result = subprocess.run([*tool("mqlite", "sub"), *address(broker), "-t", "cli/file",
                             "-C", "1"], capture_output=True, timeout=30)
    assert result.stdout == b"\x00binary\xff\n"


@pytest.mark.parametrize("kind", ["mosquitto", "mqlite"])
def test_exit_codes_match(broker: Broker, kind: str) -> None:
    timed_out = subprocess.run([*tool(kind, "sub"), *address(broker), "-t", "none", "-W", "1"],
                               capture_output=True, text=True, timeout=30)
    assert timed_out.returncode == 27 and "Timed out" in timed_out.stderr
    bad_qos = subprocess.run([*tool(kind, "pub"), *address(broker), "-t", "x", "-m", "y",
                              "-q", "3"], capture_output=True, text=True, timeout=30)
    assert bad_qos.returncode == 1 and "Invalid QoS given: 3" in bad_qos.stderr
    refused = subprocess.run([*tool(kind, "pub"), "-h", "127.0.0.1", "-p", "1", "-t", "x",
                              "-m", "y"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "Connection refused" in refused.stderr
