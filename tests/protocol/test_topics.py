"""Topic names and filters (spec 4.7), shared subscriptions (spec 4.8.2), wildcard matching."""

from __future__ import annotations

import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqlite.protocol import (
    InvalidTopic,
    ReasonCode,
    SharedSubscription,
    parse_shared_subscription,
    topic_matches_filter,
    validate_topic_filter,
    validate_topic_name,
)


@pytest.mark.parametrize("topic", ["a", "/", "a/b", "/finance", "a//b", "$SYS/x", "é/😀",
                                   "a" * 65_535, "\ufeffbom"])
def test_valid_topic_names(topic: str) -> None:
    validate_topic_name(topic, max_levels=None)


@pytest.mark.parametrize("topic,why", [
    ("", "empty"), ("a/+", "wildcard"), ("#", "wildcard"), ("a\x00b", r"U\+0000"),
    ("a" * 65_536, "longer"), ("\ud800", "UTF-8"), ("a/" * 200, "levels"),
])
def test_invalid_topic_names(topic: str, why: str) -> None:
    with pytest.raises(InvalidTopic, match=why) as info:
        validate_topic_name(topic)
    assert info.value.reason_code == ReasonCode.TOPIC_NAME_INVALID


def test_level_limit_counts_levels() -> None:
    validate_topic_name("a/b/c", max_levels=3)
    with pytest.raises(InvalidTopic):
        validate_topic_name("a/b/c/d", max_levels=3)


@pytest.mark.parametrize("topic_filter", ["#", "+", "a/#", "a/+/b", "+/+", "/+", "a/b",
                                          "$SYS/#", "$share/g/a/#", "$share/g/#", "+/#"])
def test_valid_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


def test_shared_subscription_parsing() -> None:
    assert parse_shared_subscription("$share/grp/a/+") == SharedSubscription(
        group="grp", topic_filter="a/+"
    )
    assert parse_shared_subscription("a/b") is None
    assert parse_shared_subscription("$share/g//") == SharedSubscription(group="g",
                                                                          topic_filter="/")


# Spec checklist 44, 45, 48: the examples of spec 4.7.
@pytest.mark.parametrize("topic_filter,topic,expected", [
    ("sport/#", "sport", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking/wimbledon", True),
    ("sport/+", "sport/", True),
    ("sport/+", "sport", False),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "$SYS/x", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/x", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("/finance", "finance", False),
    ("ACCOUNTS", "Accounts", False),
])
def test_matching_examples(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches_filter(topic_filter, topic) is expected


levels = st.sampled_from(["a", "b", "", "$x"])
topics = st.lists(levels, min_size=1, max_size=4).map("/".join).filter(bool)
filters = st.lists(st.sampled_from(["a", "b", "", "+", "$x"]), min_size=1, max_size=4).flatmap(
    lambda parts: st.sampled_from(["/".join(parts), "/".join([*parts, "#"])])
).filter(bool)


@given(filters, topics)
def test_matching_agrees_with_paho(topic_filter: str, topic: str) -> None:
    """paho-mqtt's topic_matches_sub is an independent implementation of the same rules."""
    assert topic_matches_filter(topic_filter, topic) == paho.topic_matches_sub(topic_filter, topic)


def test_level_limit_is_200_levels_that_is_199_separators_for_names_and_filters() -> None:
    deepest = "/".join(["l"] * 200)
    too_deep = "/".join(["l"] * 201)
    validate_topic_name(deepest)
    validate_topic_filter(deepest)
    validate_topic_filter("/".join(["+"] * 199 + ["#"]))
    for check in (validate_topic_name, validate_topic_filter):
        with pytest.raises(InvalidTopic, match="more than 200 levels"):
            check(too_deep)
    with pytest.raises(InvalidTopic):
        validate_topic_filter("/".join(["+"] * 200 + ["#"]))
