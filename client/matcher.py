"""paho-mqtt's ``paho.mqtt.matcher``: values kept by topic filter, found by topic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mqlite.protocol import TopicTrie


class MQTTMatcher:
    """``matcher[filter] = value``; ``iter_match(topic)`` gives the values of every filter
    that matches ``topic`` (wildcards and the ``$`` rule as the broker applies them)."""

    def __init__(self) -> None:
        self._trie: TopicTrie[str, Any] = TopicTrie()
        self._values: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self._trie.remove(key, key)
        self._trie.add(key, key, value)
        self._values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __delitem__(self, key: str) -> None:
        del self._values[key]
        self._trie.remove(key, key)

    def iter_match(self, topic: str) -> Iterator[Any]:
        for entries in self._trie.match(topic):
            yield from entries.values()
