"""Who is subscribed to what: one topic trie, shared subscription groups, a match cache."""

from __future__ import annotations

from mqlite.protocol import TopicTrie, parse_shared_subscription

from .session import SubscriptionOptions


class SharedGroup:
    """The members of ``$share/{name}/{filter}``; each message goes to one of them."""

    __slots__ = ("members", "name", "next_index")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, SubscriptionOptions] = {}
        self.next_index = 0


SharedKey = tuple[str, str]  # ("$share", group name): cannot collide with a client id (a str)
Entry = SubscriptionOptions | SharedGroup
_CACHE_LIMIT = 10_000


class SubscriptionIndex:
    __slots__ = ("_cache", "_trie")

    def __init__(self) -> None:
        self._trie: TopicTrie[str | SharedKey, Entry] = TopicTrie()
        # topic -> the trie's matching entry dicts; cleared on every subscription change.
        self._cache: dict[str, list[dict[str | SharedKey, Entry]]] = {}

    def subscribe(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> None:
        self._cache.clear()
        shared = parse_shared_subscription(topic_filter)
        if shared is None:
            self._trie.add(topic_filter, client_id, options)
            return
        key: SharedKey = ("$share", shared.group)
        group = self._trie.get(shared.topic_filter).get(key)
        if not isinstance(group, SharedGroup):
            group = SharedGroup(shared.group)
            self._trie.add(shared.topic_filter, key, group)
        group.members[client_id] = options

    def unsubscribe(self, client_id: str, topic_filter: str) -> None:
        self._cache.clear()
        shared = parse_shared_subscription(topic_filter)
        if shared is None:
            self._trie.remove(topic_filter, client_id)
            return
        key: SharedKey = ("$share", shared.group)
        group = self._trie.get(shared.topic_filter).get(key)
        if isinstance(group, SharedGroup):
            group.members.pop(client_id, None)
            if not group.members:
                self._trie.remove(shared.topic_filter, key)

    def match(self, topic: str) -> list[dict[str | SharedKey, Entry]]:
        found = self._cache.get(topic)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[topic] = self._trie.match(topic)
        return found
