"""What the built-in security hooks decide for each listener, looked up by the name a client's
listener has once bound (a port-0 listener is named by the port it got)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from ..config.listener_config import ListenerConfig

T = TypeVar("T")


class PerListener(Generic[T]):
    def __init__(self) -> None:
        self._decided: list[tuple[ListenerConfig, T]] = []
        self.by_name: dict[str, T] = {}

    def decide(self, decided: Iterable[tuple[ListenerConfig, T]]) -> None:
        """Each listener's value, from a new configuration; named ones are bound at once."""
        self._decided = list(decided)
        self.bind({listener.name: listener for listener, _ in self._decided if listener.name})

    def bind(self, listeners: dict[str, ListenerConfig]) -> None:
        """The open listeners by their names."""
        self.by_name = {name: value for name, config in listeners.items()
                        for listener, value in self._decided if listener == config}
