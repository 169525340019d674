"""The topic trie: subscriptions by filter, retained messages by topic, both directions."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from mqlite.protocol import TopicTrie, topic_matches_filter

from .test_topics import filters, topics


def _matched(trie: TopicTrie[str, str], topic: str) -> set[str]:
    return {key for entries in trie.match(topic) for key in entries}


def test_wildcards_parent_and_dollar_rules() -> None:
    trie: TopicTrie[str, str] = TopicTrie()
    for topic_filter in ["a/#", "a/+", "+/b", "#", "$SYS/#", "a/b", "+"]:
        trie.add(topic_filter, topic_filter, "")
    assert _matched(trie, "a/b") == {"a/#", "a/+", "+/b", "#", "a/b"}
    assert _matched(trie, "a") == {"a/#", "#", "+"}  # a/# matches a
    assert _matched(trie, "$SYS/b") == {"$SYS/#"}  # no + or # at the first level


def test_entries_per_filter_replace_and_remove_prunes() -> None:
    trie: TopicTrie[str, int] = TopicTrie()
    assert trie.add("a/b", "c1", 1) is True
    assert trie.add("a/b", "c1", 2) is False  # re-subscribing replaces
    assert trie.add("a/b", "c2", 3) is True
    assert len(trie) == 2
    assert trie.match("a/b") == [{"c1": 2, "c2": 3}]
    assert trie.remove("a/b", "c1") is True
    assert trie.remove("a/b", "c1") is False
    assert trie.remove("a/x", "c2") is False
    assert trie.remove("a/b", "c2") is True
    assert len(trie) == 0
    assert trie._root.children == {}  # pruned back to the root


def test_65535_levels_raise_no_recursion_error() -> None:
    deep = "/".join(["x"] * 65_535)
    assert sys.getrecursionlimit() < 65_535
    trie: TopicTrie[str, str] = TopicTrie()
    trie.add(deep, "deep", "v")
    trie.add("#", "all", "v")
    trie.add("/".join(["+"] * 65_535), "pluses", "v")
    assert _matched(trie, deep) == {"deep", "all", "pluses"}
    assert [key for _, key, _ in trie.match_filter("#")] != []
    assert trie.remove(deep, "deep")


def test_retained_lookup_by_filter() -> None:
    retained: TopicTrie[str, bytes] = TopicTrie()
    for topic in ["a", "a/b", "a/b/c", "b/b", "$SYS/x", "/a"]:
        retained.add(topic, topic, topic.encode())
    found = lambda f: sorted(topic for topic, _, _ in retained.match_filter(f))  # noqa: E731
    assert found("a/#") == ["a", "a/b", "a/b/c"]
    assert found("+/b") == ["a/b", "b/b"]
    assert found("#") == ["/a", "a", "a/b", "a/b/c", "b/b"]
    assert found("$SYS/#") == ["$SYS/x"]
    assert found("+/a") == ["/a"]
    assert found("a/b") == ["a/b"]
    assert found("x/#") == []


@given(st.lists(filters, max_size=8), topics)
def test_match_agrees_with_the_reference_matcher(filter_list: list[str], topic: str) -> None:
    trie: TopicTrie[str, None] = TopicTrie()
    for topic_filter in filter_list:
        trie.add(topic_filter, topic_filter, None)
    expected = {f for f in filter_list if topic_matches_filter(f, topic)}
    assert _matched(trie, topic) == expected  # type: ignore[arg-type]


@given(st.lists(topics, max_size=8), filters)
def test_match_filter_agrees_with_the_reference_matcher(
    topic_list: list[str], topic_filter: str
) -> None:
    trie: TopicTrie[str, None] = TopicTrie()
    for topic in topic_list:
        trie.add(topic, topic, None)
    expected = {t for t in topic_list if topic_matches_filter(topic_filter, t)}
    assert {t for t, _, _ in trie.match_filter(topic_filter)} == expected
