"""Who is subscribed to what: one topic trie, shared subscription groups, a match cache."""

from __future__ import annotations

from collections.abc import Callable

from mqlite.protocol import TopicTrie, parse_shared_subscription

from .session import SubscriptionOptions


class SharedGroup:
    """The members of ``$share/{name}/{filter}``; each message goes to one of them."""

    __slots__ = ("members", "name", "next_index", "share")

    def __init__(self, name: str, share: str) -> None:
        self.name = name
        self.share = share  # the whole "$share/{name}/{filter}"
        self.members: dict[str, SubscriptionOptions] = {}
        self.next_index = 0


SharedKey = tuple[str, str]  # ("$share", group name): cannot collide with a client id (a str)
Entry = SubscriptionOptions | SharedGroup
_CACHE_LIMIT = 10_000


class SubscriptionIndex:
    __slots__ = ("_cache", "_on_route", "_routes", "_trie")

    def __init__(self) -> None:
        self._trie: TopicTrie[str | SharedKey, Entry] = TopicTrie()
        # topic -> the trie's matching entry dicts; cleared on every subscription change.
        self._cache: dict[str, list[dict[str | SharedKey, Entry]]] = {}
        # Cluster mode: how many sessions hold each filter (a shared one by its whole
        # "$share/..." form), and who is told when a filter gains its first or loses its last.
        self._routes: dict[str, int] | None = None
        self._on_route: Callable[[str, bool], None] | None = None

    def watch_routes(self, on_change: Callable[[str, bool], None] | None = None) -> None:
        """Count sessions per filter from now on; ``on_change(filter, added)`` on the first
        and the last (replaceable: the cluster node sets it once it runs)."""
        if self._routes is None:
            self._routes = {}
        self._on_route = on_change

    def routes(self) -> list[str]:
        """The filters this broker's sessions subscribe to (cluster mode)."""
        return list(self._routes or ())

    def has_route(self, topic_filter: str) -> bool:
        return self._routes is not None and topic_filter in self._routes

    def subscribe(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> None:
        self._cache.clear()
        shared = parse_shared_subscription(topic_filter)
        if shared is None:
            if self._trie.add(topic_filter, client_id, options) and self._routes is not None:
                self._count(topic_filter, 1)
            return
        key: SharedKey = ("$share", shared.group)
        group = self._trie.get(shared.topic_filter).get(key)
        if not isinstance(group, SharedGroup):
            group = SharedGroup(shared.group, topic_filter)
            self._trie.add(shared.topic_filter, key, group)
        if self._routes is not None and client_id not in group.members:
            self._count(topic_filter, 1)
        group.members[client_id] = options

    def unsubscribe(self, client_id: str, topic_filter: str) -> None:
        self._cache.clear()
        shared = parse_shared_subscription(topic_filter)
        if shared is None:
            if self._trie.remove(topic_filter, client_id) and self._routes is not None:
                self._count(topic_filter, -1)
            return
        key: SharedKey = ("$share", shared.group)
        group = self._trie.get(shared.topic_filter).get(key)
        if isinstance(group, SharedGroup):
            if self._routes is not None and client_id in group.members:
                self._count(topic_filter, -1)
            group.members.pop(client_id, None)
            if not group.members:
                self._trie.remove(shared.topic_filter, key)

    def _count(self, topic_filter: str, step: int) -> None:
        routes = self._routes
        assert routes is not None
        count = routes.get(topic_filter, 0) + step
        if count:
            routes[topic_filter] = count
        else:
            del routes[topic_filter]
        if ((count == 1 and step == 1) or count == 0) and self._on_route is not None:
            self._on_route(topic_filter, step == 1)

    def match(self, topic: str) -> list[dict[str | SharedKey, Entry]]:
        found = self._cache.get(topic)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[topic] = self._trie.match(topic)
        return found
