"""One topic trie for subscriptions, retained messages and per-filter callbacks.

Keys are topic filters (or, for retained messages, topic names) split on ``/``; each node holds a
dict of entries. Every walk is iterative, so a 65,535-level topic cannot raise RecursionError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Node(Generic[K, V]):
    __slots__ = ("children", "entries")

    def __init__(self) -> None:
        self.children: dict[str, _Node[K, V]] = {}
        self.entries: dict[K, V] = {}


class TopicTrie(Generic[K, V]):
    """Maps topic filters to entries ``key -> value`` (for example client id -> options).

    ``match(topic)`` finds the entries of every filter that matches a topic name: ``+`` matches
    one level, ``#`` the rest including the parent (``a/#`` matches ``a``), and filters that
    start with a wildcard never match topics that start with ``$`` (spec 4.7.2).

    Used the other way round, with topic names as keys, ``match_filter(filter)`` finds the
    entries stored under every topic name a filter matches: the retained-message lookup.
    """

    __slots__ = ("_root", "_size")

    def __init__(self) -> None:
        self._root: _Node[K, V] = _Node()
        self._size = 0

    def __len__(self) -> int:
        """The number of entries."""
        return self._size

    def add(self, key_path: str, key: K, value: V) -> bool:
        """Store ``value`` for ``key`` at ``key_path``; True if it is new, False if replaced."""
        node = self._root
        for level in key_path.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        is_new = key not in node.entries
        node.entries[key] = value
        if is_new:
            self._size += 1
        return is_new

    def remove(self, key_path: str, key: K) -> bool:
        """Remove ``key`` at ``key_path``, pruning empty nodes; True if it was there."""
        path: list[tuple[_Node[K, V], str]] = []
        node = self._root
        for level in key_path.split("/"):
            child = node.children.get(level)
            if child is None:
                return False
            path.append((node, level))
            node = child
        if key not in node.entries:
            return False
        del node.entries[key]
        self._size -= 1
        while path and not node.entries and not node.children:
            parent, level = path.pop()
            del parent.children[level]
            node = parent
        return True

    def get(self, key_path: str) -> dict[K, V]:
        """The entries stored at exactly ``key_path`` (a copy)."""
        node = self._root
        for level in key_path.split("/"):
            child = node.children.get(level)
            if child is None:
                return {}
            node = child
        return dict(node.entries)

    def match(self, topic: str) -> list[dict[K, V]]:
        """The entry dicts of every filter matching the topic name ``topic`` (not copies: read
        them, do not keep or change them)."""
        levels = topic.split("/")
        last = len(levels)
        found: list[dict[K, V]] = []
        # (node, index of the next level to match)
        stack: list[tuple[_Node[K, V], int]] = [(self._root, 0)]
        dollar = topic.startswith("$")
        while stack:
            node, index = stack.pop()
            children = node.children
            if not children:
                if index == last and node.entries:
                    found.append(node.entries)
                continue
            wildcards_allowed = not (dollar and index == 0)
            if wildcards_allowed:
                multi = children.get("#")
                if multi is not None and multi.entries:
                    found.append(multi.entries)
            if index == last:
                if node.entries:
                    found.append(node.entries)
                continue
            level = levels[index]
            child = children.get(level)
            if child is not None:
                stack.append((child, index + 1))
            if wildcards_allowed:
                single = children.get("+")
                if single is not None:
                    stack.append((single, index + 1))
        return found

    def match_filter(self, topic_filter: str) -> Iterator[tuple[str, K, V]]:
        """``(topic, key, value)`` for every entry stored under a topic name that
        ``topic_filter`` matches. The keys of this trie must be topic names, not filters."""
        levels = topic_filter.split("/")
        last = len(levels)
        # (node, index of the next filter level, the topic levels walked so far)
        stack: list[tuple[_Node[K, V], int, _Walked | None]] = [(self._root, 0, None)]
        while stack:
            node, index, walked = stack.pop()
            if index == last:
                yield from self._entries_at(node, walked)
                continue
            level = levels[index]
            if level == "#":
                yield from self._subtree(node, walked, skip_dollar=index == 0)
            elif level == "+":
                for name, child in node.children.items():
                    if not (index == 0 and name.startswith("$")):
                        stack.append((child, index + 1, _Walked(walked, name)))
            else:
                exact = node.children.get(level)
                if exact is not None:
                    stack.append((exact, index + 1, _Walked(walked, level)))

    @staticmethod
    def _entries_at(node: _Node[K, V], walked: _Walked | None) -> Iterator[tuple[str, K, V]]:
        if node.entries:
            topic = _topic(walked)
            for key, value in node.entries.items():
                yield topic, key, value

    def _subtree(
        self, start: _Node[K, V], walked: _Walked | None, *, skip_dollar: bool
    ) -> Iterator[tuple[str, K, V]]:
        """Every entry at ``start`` (``a/#`` matches ``a``) and below it."""
        stack: list[tuple[_Node[K, V], _Walked | None]] = [(start, walked)]
        while stack:
            node, path = stack.pop()
            if path is not None:  # the root itself holds no topic
                yield from self._entries_at(node, path)
            for name, child in node.children.items():
                if skip_dollar and path is None and name.startswith("$"):
                    continue
                stack.append((child, _Walked(path, name)))


class _Walked:
    """The topic levels walked from the root, as the last level and the walk before it: one
    step costs one small object, where a tuple of all the levels would copy them at each step
    (quadratic in the depth: seconds for a 65,535-level topic)."""

    __slots__ = ("before", "level")

    def __init__(self, before: _Walked | None, level: str) -> None:
        self.before = before
        self.level = level


def _topic(walked: _Walked | None) -> str:
    levels = []
    while walked is not None:
        levels.append(walked.level)
        walked = walked.before
    levels.reverse()
    return "/".join(levels)
