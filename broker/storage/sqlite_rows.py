"""How the SQLite store's rows hold messages: a body row shared by several queue rows or the
retained table, or a queue row's own inline copy (schema 2), and the SQL that reads either."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from ..engine.journal import DeliverySaved, StoredDelivery
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


class QueueRows(NamedTuple):
    """A batch of waiting queue-row changes as SQL parameters."""

    referring: list[tuple[Any, ...]]  # rows whose message is a body row
    inline: list[tuple[Any, ...]]  # rows holding their message
    singles: list[tuple[str, int]]  # (client id, seq) to delete
    runs: list[tuple[str, int, int]]  # (client id, first seq, last seq) to delete


def queue_rows(pending: dict[tuple[str, int], DeliverySaved | None],
               body_id: Callable[[Message], int]) -> QueueRows:
    """The parameters that write ``pending`` (by (client id, seq): the delivery to write, or
    None to delete it): a message more than one row shares gets its body row (``body_id``
    inserts it), the others are inline; deletions go as runs of consecutive seqs."""
    shared = shared_messages(pending.values())
    rows = QueueRows([], [], [], [])
    gone: dict[str, list[int]] = {}
    for (client_id, seq), delivery in pending.items():
        if delivery is None:
            gone.setdefault(client_id, []).append(seq)
            continue
        ids = ",".join(map(str, delivery.subscription_ids)) or None
        message = delivery.message
        body = message.store_id
        if body is None and id(message) in shared:
            body = body_id(message)
        if body is None:
            rows.inline.append((client_id, seq, delivery.qos, delivery.retain,
                                delivery.packet_id, delivery.state, ids,
                                *message_columns(message)))
        else:
            rows.referring.append((client_id, seq, body, delivery.qos, delivery.retain,
                                   delivery.packet_id, delivery.state, ids))
    for client_id, seqs in gone.items():
        for first, last in seq_runs(seqs):
            if first == last:
                rows.singles.append((client_id, first))
            else:
                rows.runs.append((client_id, first, last))
    return rows


def queued_deliveries(rows: list[Any], offset: float) -> list[StoredDelivery]:
    """The deliveries of rows read as ``seq, qos, retain, packet_id, state,
    subscription_ids, message_id, EITHER_BODY``; ``offset`` turns wall-clock times into
    monotonic ones. Rows that share a body share its Message."""
    bodies: dict[int, Message] = {}
    found = []
    for seq, qos, retain, packet_id, state, ids, body, *columns in rows:
        message = bodies.get(body) if body is not None else None
        if message is None:  # inline (this row's own), or the first row of its body
            message = stored_message(body, *columns, offset=offset)
            if body is not None:
                bodies[body] = message
        found.append(StoredDelivery(seq=seq, message=message, qos=qos, retain=bool(retain),
                                    packet_id=packet_id, state=state,
                                    subscription_ids=subscription_ids_of(ids)))
    return found


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
