"""How the SQLite store's rows hold messages: a body row shared by several queue rows or the
retained table, or a queue row's own inline copy (schema 2), and the SQL that reads either."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..engine.journal import DeliverySaved
from ..engine.serialize import pack_properties, unpack_properties
from ..message import Message

# A message body's columns, in the order stored_message() takes them; a queue row's inline
# copy of them; and whichever of the two a row has.
BODY_COLUMNS = ("m.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at, m.origin, "
                "m.created_at")
INLINE_BODY = ("q.topic, q.payload, q.message_qos, q.message_retain, q.properties, "
               "q.expires_at, q.origin, q.created_at")
EITHER_BODY = ", ".join(
    f"CASE WHEN q.message_id IS NULL THEN {inline} ELSE {body} END"
    for inline, body in zip(INLINE_BODY.split(", "), BODY_COLUMNS.split(", "), strict=True))
# A queue row written again (the next step of its flow) keeps its message.
UPSERT_FLOW = ("ON CONFLICT(client_id, seq) DO UPDATE SET packet_id=excluded.packet_id, "
               "state=excluded.state")


def message_columns(message: Message) -> tuple[Any, ...]:
    """A message as stored, in the order of BODY_COLUMNS (times on the wall clock)."""
    expires = None
    if message.expires_at is not None:  # monotonic -> wall clock
        expires = time.time() + (message.expires_at - time.monotonic())
    return (message.topic, message.payload, message.qos, message.retain,
            pack_properties(message.properties), expires, message.origin, time.time())


def shared_messages(deliveries: Iterable[DeliverySaved | None]) -> set[int]:
    """The ids of the messages without a body row that more than one of ``deliveries``
    refers to: those get one body row, the others are stored inline."""
    seen: set[int] = set()
    shared: set[int] = set()
    for delivery in deliveries:
        if delivery is not None and delivery.message.store_id is None:
            key = id(delivery.message)
            if key in seen:
                shared.add(key)
            else:
                seen.add(key)
    return shared


def seq_runs(seqs: list[int]) -> Iterator[tuple[int, int]]:
    """``(first, last)`` of each run of consecutive numbers among ``seqs``."""
    seqs.sort()
    first = last = seqs[0]
    for seq in seqs[1:]:
        if seq != last + 1:
            yield first, last
            first = seq
        last = seq
    yield first, last


def stored_message(store_id: int | None, topic: str, payload: bytes, qos: int, retain: int,
          properties: bytes | None, expires_at: float | None, origin: str | None,
          created_at: float, *, offset: float) -> Message:
    """A stored message body as the broker routes it; ``offset`` turns the stored wall-clock
    times into monotonic ones."""
    return Message(topic=topic, payload=payload, qos=qos, retain=bool(retain),
                   properties=unpack_properties(properties), origin=origin,
                   expires_at=None if expires_at is None else expires_at + offset,
                   store_id=store_id, received_at=created_at + offset)


def subscription_ids_of(column: str | None) -> tuple[int, ...]:
    """Subscription identifiers, stored comma-separated."""
    return tuple(int(i) for i in column.split(",")) if column else ()
