"""The promise: a paho-mqtt 2.x program runs unchanged with ``import mqlite.client as mqtt``.

One program (compat_program.py) runs against both modules, as separate processes, talking to
the same broker; the transcripts of what each observed must be identical.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mqlite.broker import Broker

PROGRAM = Path(__file__).with_name("compat_program.py")


def run(module: str, broker: Broker, version: int) -> str:
    host, port = broker.address
    result = subprocess.run(
        [sys.executable, str(PROGRAM), module, host, str(port), str(version)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_same_program_same_transcript(broker: Broker, version: int) -> None:
    paho = run("paho", broker, version)
    mqlite = run("mqlite", broker, version)
    assert "received compat/data/2 b'payload 2' qos=2" in paho
    assert mqlite.splitlines() == paho.splitlines()


def test_callback_api_version1_is_paho_1_and_deprecated_and_a_client_id_first_is_refused(
        ) -> None:
    import mqlite.client as mqtt

    with pytest.warns(DeprecationWarning, match="Callback API version 1 is deprecated"):
        client = mqtt.Client(client_id="c")  # paho 2.x's default: VERSION1
    assert client.callback_api_version is mqtt.CallbackAPIVersion.VERSION1
    with pytest.raises(TypeError, match="callback_api_version"):
        mqtt.Client("client-id")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unsupported callback API version"):
        mqtt.Client(3)  # type: ignore[arg-type]
