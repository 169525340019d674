"""The client's record of its subscriptions, so they can be made while offline and are made
again when the broker reports no session. No I/O, no locking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mqlite.protocol import EMPTY_PROPERTIES, InvalidTopic, Subscription, validate_topic_filter
from mqlite.protocol import Properties as WireProperties

from .mqtt5_types import SubscribeOptions


@dataclass(slots=True)
class Record:
    subscription: Subscription
    properties: WireProperties
    # The connection this subscription was last sent on (0: not on any yet).
    sent_on: int = 0


def parse_subscribe_args(
    topic: Any, qos: int, options: SubscribeOptions | None
) -> list[Subscription]:
    """paho's accepted forms: "a/b", ("a/b", qos or options), or a list of such tuples."""
    if isinstance(topic, str | bytes):
        items: list[tuple[Any, Any]] = [(topic, options if options is not None else qos)]
    elif isinstance(topic, tuple):
        items = [topic]
    elif isinstance(topic, list):
        if not topic:
            raise ValueError("No topic specified, or incorrect topic type.")
        items = list(topic)
    else:
        raise ValueError("No topic specified, or incorrect topic type.")
    result = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise ValueError(f"Invalid subscription {item!r}: use (topic, qos)")
        name, spec = item
        if isinstance(name, bytes):
            name = name.decode("utf-8")
        if not isinstance(name, str) or not name:
            raise ValueError("Invalid topic.")
        try:
            validate_topic_filter(name, max_levels=None)
        except InvalidTopic as exc:
            raise ValueError(f"Invalid topic filter {name!r}: {exc}") from None
        if isinstance(spec, SubscribeOptions):
            result.append(Subscription(
                topic_filter=name, qos=spec.QoS, no_local=spec.noLocal,
                retain_as_published=spec.retainAsPublished, retain_handling=spec.retainHandling))
        else:
            if not isinstance(spec, int) or spec not in (0, 1, 2):
                raise ValueError("Invalid QoS level.")
            result.append(Subscription(topic_filter=name, qos=spec))
    return result


class SubscriptionBook:
    """Filter -> what was asked for. A refused subscription (SUBACK >= 0x80) is forgotten."""

    __slots__ = ("awaiting_ack", "records")

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        # SUBSCRIBE packet id -> its filters, until the SUBACK.
        self.awaiting_ack: dict[int, list[str]] = {}

    def add(self, subscriptions: list[Subscription], properties: WireProperties,
            connection: int) -> None:
        for subscription in subscriptions:
            self.records[subscription.topic_filter] = Record(subscription, properties, connection)

    def remove(self, topic_filters: list[str]) -> None:
        for topic_filter in topic_filters:
            self.records.pop(topic_filter, None)

    def acknowledged(self, mid: int, reason_codes: list[int]) -> None:
        for topic_filter, code in zip(self.awaiting_ack.pop(mid, []), reason_codes,
                                      strict=False):
            if code >= 0x80:
                self.records.pop(topic_filter, None)

    def stale(self, connection: int) -> list[tuple[WireProperties, list[Subscription]]]:
        """Subscriptions not yet sent on ``connection``, grouped into SUBSCRIBE packets: those
        without properties together, each one with properties alone."""
        plain: list[Subscription] = []
        groups: list[tuple[WireProperties, list[Subscription]]] = []
        for record in self.records.values():
            if record.sent_on == connection:
                continue
            record.sent_on = connection
            if record.properties is EMPTY_PROPERTIES:
                plain.append(record.subscription)
            else:
                groups.append((record.properties, [record.subscription]))
        if plain:
            groups.insert(0, (EMPTY_PROPERTIES, plain))
        return groups

    def mark_all_sent(self, connection: int) -> None:
        for record in self.records.values():
            record.sent_on = connection
