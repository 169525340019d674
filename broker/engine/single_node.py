"""A broker alone: the default ``Cluster`` (services.py). Every client id is its own at once,
nothing waits for another node, and no message needs one."""

from __future__ import annotations

from collections.abc import Callable

from ..message import Message
from .clock import Clock
from .connection import Connection
from .services import RouteResult
from .session import Session


class SingleNode:
    available = True  # nothing to be cut off from

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def claim(self, conn: Connection, client_id: str,
              proceed: Callable[[bool, float], None]) -> None:
        proceed(True, self._clock.monotonic())

    def hold(self, conn: Connection, session: Session | None, qos2_id: int | None) -> None:
        """Nothing to wait for: the answers leave after the store's commit."""

    def needs_remote(self, topic: str, retain: bool) -> bool:
        return False

    def session_ended(self, client_id: str) -> None:
        """No claim to release."""

    def publish(self, message: Message, now: float) -> RouteResult:
        raise AssertionError("a single broker routes its messages itself (core.publish)")

    @property
    def node_id(self) -> str:
        return ""

    def flush(self) -> None:
        """No other node to write to."""

    def sessions_fenced(self, client_ids: list[str]) -> None:
        """No other node can own them."""
