"""Topic name and topic filter rules (spec 4.7) and shared subscription parsing (spec 4.8.2)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidTopic
from .reason_codes import ReasonCode

MAX_TOPIC_BYTES = 65_535
# Deep hierarchies have crashed brokers (CVE-2019-11779). At most 200 levels, that is 199
# separators, for topic names and filters alike ("a/b" is 2 levels). mosquitto's limit of 200
# counts separators, so it allows 201 levels.
DEFAULT_MAX_TOPIC_LEVELS = 200
SHARE_PREFIX = "$share/"


def _check_common(text: str, what: str, reason: ReasonCode, max_levels: int | None) -> None:
    if not text:
        raise InvalidTopic(f"{what} is empty", reason)
    if "\x00" in text:
        raise InvalidTopic(f"{what} contains U+0000", reason)
    # Strings from the wire are already checked UTF-8; strings from callers may hold lone
    # surrogates, which cannot be encoded.
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidTopic(f"{what} is not valid UTF-8", reason) from None
    if size > MAX_TOPIC_BYTES:
        raise InvalidTopic(f"{what} is longer than 65,535 bytes", reason)
    if max_levels is not None and text.count("/") >= max_levels:
        raise InvalidTopic(f"{what} has more than {max_levels} levels", reason)


def validate_topic_name(topic: str, max_levels: int | None = DEFAULT_MAX_TOPIC_LEVELS) -> None:
    """Raise :class:`InvalidTopic` (0x90) unless ``topic`` may be published to."""
    _check_common(topic, "topic name", ReasonCode.TOPIC_NAME_INVALID, max_levels)
    if "+" in topic or "#" in topic:
        raise InvalidTopic("topic name contains a wildcard", ReasonCode.TOPIC_NAME_INVALID)


def validate_topic_filter(
    topic_filter: str, max_levels: int | None = DEFAULT_MAX_TOPIC_LEVELS
) -> None:
    """Raise :class:`InvalidTopic` (0x8F) unless ``topic_filter`` may be subscribed to.

    Wildcards stand alone in their level; ``#`` only as the last level. A ``$share/`` filter
    is checked as a shared subscription.
    """
    reason = ReasonCode.TOPIC_FILTER_INVALID
    _check_common(topic_filter, "topic filter", reason, max_levels)
    if topic_filter.startswith(SHARE_PREFIX):
        parse_shared_subscription(topic_filter)
        return
    _check_filter_levels(topic_filter)


def _check_filter_levels(topic_filter: str) -> None:
    reason = ReasonCode.TOPIC_FILTER_INVALID
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and index != last:
                raise InvalidTopic("'#' must be the last level of a topic filter", reason)
        elif "+" in level or "#" in level:
            raise InvalidTopic("a wildcard must occupy a whole topic level", reason)


@dataclass(frozen=True, slots=True)
class SharedSubscription:
    """``$share/{group}/{topic_filter}``: each message goes to one member of the group."""

    group: str
    topic_filter: str


def parse_shared_subscription(topic_filter: str) -> SharedSubscription | None:
    """Split a ``$share/`` filter into group and filter; ``None`` for an ordinary filter.

    Raises :class:`InvalidTopic` (0x8F) for a malformed share: an empty group, a group holding
    a wildcard, or no filter after the group.
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        return None
    reason = ReasonCode.TOPIC_FILTER_INVALID
    rest = topic_filter[len(SHARE_PREFIX):]
    group, sep, inner = rest.partition("/")
    if not group:
        raise InvalidTopic("shared subscription has an empty share name", reason)
    if "+" in group or "#" in group:
        raise InvalidTopic("share name contains a wildcard", reason)
    if not sep or not inner:
        raise InvalidTopic("shared subscription has no topic filter", reason)
    _check_filter_levels(inner)
    return SharedSubscription(group=group, topic_filter=inner)


def topic_matches_filter(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (``+``, ``#``, ``a/#`` matches ``a``, and
    filters starting with a wildcard never match topics starting with ``$``)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
