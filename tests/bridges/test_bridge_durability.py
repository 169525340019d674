"""The bridge durability test of bench/bridge_durability.py, with mqlite as the edge: 10,000
QoS 1 messages, the edge killed with SIGKILL five times at random moments, the remote mosquitto
away across one of the kills; every message the edge acknowledged reaches the remote
subscriber."""

from __future__ import annotations

import pytest

from bench.bridge_durability import run

from ..interop.mosquitto import require_mosquitto

require_mosquitto()


@pytest.mark.slow
def test_every_acknowledged_message_crosses_the_bridge_through_kill_9() -> None:
    result = run("mqlite", messages=10_000, kills=5)
    assert result["acknowledged"] == 10_000
    assert result["lost"] == 0, result
