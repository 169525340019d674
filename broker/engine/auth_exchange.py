"""The state of one MQTT 5 enhanced authentication exchange on a connection (see
broker/engine/handlers/auth.py, which runs it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mqlite.protocol.scram import ScramServer

# After a CONNECT's exchange: (the authenticated username, or None if it failed; the data for
# the CONNACK; why it failed; now).
Outcome = Callable[[str | None, bytes, str, float], None]


@dataclass(slots=True)
class Exchange:
    method: str
    server: ScramServer
    then: Outcome | None  # CONNECT's continuation; None for a re-authentication
