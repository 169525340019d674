"""Retained messages by topic (spec 3.3.1.3): stored, replaced, deleted by an empty payload."""

from __future__ import annotations

from mqlite.protocol import TopicTrie

from ..message import Message


class RetainedMessages:
    __slots__ = ("_broker_own", "_trie")

    def __init__(self) -> None:
        self._trie: TopicTrie[str, Message] = TopicTrie()
        self._broker_own = 0  # retained under "$" topics: the broker's own ($SYS)

    def __len__(self) -> int:
        return len(self._trie)

    @property
    def applications(self) -> int:
        """Retained messages but the broker's own $SYS tree: what clients retained, as the
        admin API lists them and the metrics count them."""
        return len(self._trie) - self._broker_own

    def set(self, message: Message) -> None:
        if self._trie.add(message.topic, message.topic, message) and \
                message.topic.startswith("$"):
            self._broker_own += 1

    def delete(self, topic: str) -> bool:
        removed = self._trie.remove(topic, topic)
        if removed and topic.startswith("$"):
            self._broker_own -= 1
        return removed

    def topics(self) -> list[str]:
        """Every retained topic but $SYS's (those are each broker's own)."""
        return [topic for topic, _, _ in self._trie.match_filter("#")]

    def payload_bytes(self) -> int:
        """Payload bytes of every retained message ($SYS's too), counted when asked."""
        return sum(len(message.payload) for pattern in ("#", "$SYS/#")
                   for _, _, message in self._trie.match_filter(pattern))

    def matching(self, topic_filter: str, now: float) -> list[Message]:
        """Unexpired retained messages whose topics ``topic_filter`` matches; expired ones
        found on the way are dropped."""
        found = []
        expired = []
        for topic, _, message in self._trie.match_filter(topic_filter):
            if message.expired(now):
                expired.append(topic)
            else:
                found.append(message)
        for topic in expired:
            self.delete(topic)
        return found
