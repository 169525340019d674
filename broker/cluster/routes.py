"""The other nodes' routes: which node's sessions subscribe to which filters, as each node
publishes its own set (only the owner writes it, so there are no conflicts, only delay). A
topic trie answers which nodes a message must go to; shared subscriptions ("$share/g/f") are
kept by their whole form, so that one member cluster-wide can be picked per message."""

from __future__ import annotations

from mqlite.protocol import TopicTrie, parse_shared_subscription

# A shared route's trie key: ("$share/g/f", node).
_ShareKey = tuple[str, str]
_CACHE_LIMIT = 10_000


class Targets:
    """Where a message goes beyond this node: nodes with a plain matching filter, and for
    each matching shared subscription the nodes that have members of it."""

    __slots__ = ("nodes", "shares")

    def __init__(self) -> None:
        self.nodes: set[str] = set()
        self.shares: dict[str, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.nodes or self.shares)


_NOWHERE = Targets()


class RouteTable:
    def __init__(self) -> None:
        self._trie: TopicTrie[str | _ShareKey, None] = TopicTrie()
        self.by_node: dict[str, set[str]] = {}
        # The version of each node's set that this table holds (events carry the next).
        self.versions: dict[str, int] = {}
        self._cache: dict[str, Targets] = {}

    def __len__(self) -> int:
        return sum(map(len, self.by_node.values()))

    def replace(self, node: str, filters: set[str], version: int) -> None:
        """A node's whole set, as loaded (unless what is held is newer: a change event can
        overtake a load's answer, which travels on another connection)."""
        if node in self.versions and version < self.versions[node]:
            return
        for topic_filter in self.by_node.get(node, set()) - filters:
            self._remove(node, topic_filter)
        for topic_filter in filters - self.by_node.get(node, set()):
            self._add(node, topic_filter)
        self.versions[node] = version

    def apply(self, node: str, version: int, ops: list[str]) -> bool:
        """One change event ("+filter" / "-filter" each); False when it does not follow the
        version held (an event was missed: the node's set must be loaded again)."""
        if version <= self.versions.get(node, 0):
            return True  # already in what was loaded
        if version != self.versions.get(node, 0) + 1:
            return False
        for op in ops:
            if op[:1] == "+":
                self._add(node, op[1:])
            else:
                self._remove(node, op[1:])
        self.versions[node] = version
        return True

    def match(self, topic: str) -> Targets:
        found = self._cache.get(topic)
        if found is not None:
            return found
        targets = Targets()
        for entries in self._trie.match(topic):
            for key in entries:
                if isinstance(key, str):
                    targets.nodes.add(key)
                else:
                    targets.shares.setdefault(key[0], []).append(key[1])
        for nodes in targets.shares.values():
            nodes.sort()  # the same order on every call, for the round robin
        if not targets:
            targets = _NOWHERE
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = targets
        return targets

    def _add(self, node: str, topic_filter: str) -> None:
        filters = self.by_node.setdefault(node, set())
        if topic_filter in filters:
            return
        filters.add(topic_filter)
        self._cache.clear()
        shared = parse_shared_subscription(topic_filter)
        if shared is None:
            self._trie.add(topic_filter, node, None)
        else:
            self._trie.add(shared.topic_filter, (topic_filter, node), None)

    def _remove(self, node: str, topic_filter: str) -> None:
        filters = self.by_node.get(node)
        if not filters or topic_filter not in filters:
            return
        filters.discard(topic_filter)
        self._cache.clear()
        shared = parse_shared_subscription(topic_filter)
        if shared is None:
            self._trie.remove(topic_filter, node)
        else:
            self._trie.remove(shared.topic_filter, (topic_filter, node))
