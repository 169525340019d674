"""What nodes send each other through their inbound streams and channels, in msgpack: a
forwarded message, a take-over request and its answer, a retained message."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped]  # ships no type information

from ..engine.serialize import pack_properties, unpack_properties
from ..message import Message

FORWARD, FORWARD_ONLY, TAKEOVER, TAKEN = "p", "o", "t", "d"


class Forwarded(NamedTuple):
    message_id: str
    message: Message
    shares: list[str]  # the shared subscriptions whose member the receiving node picks
    # For these sessions only (ones that moved from the sending node, which still got their
    # messages): None for every matching session of the receiving node.
    only: list[str] | None = None


class Takeover(NamedTuple):
    """``client_id``'s connection that ``owner`` names is to be closed: another node took
    the id over (its claim replaced ``owner``); answer to ``reply_to``."""

    client_id: str
    owner: str
    reply_to: str


class Taken(NamedTuple):
    """The answer: the node that held ``client_id`` let it go."""

    client_id: str
    owner: str  # the claim of the node that asked


def _message_fields(message: Message, now: float) -> list[Any]:
    remaining = None if message.expires_at is None else max(0.0, message.expires_at - now)
    return [message.topic, message.payload, message.qos, message.retain,
            pack_properties(message.properties), message.origin, remaining]


def _message(fields: list[Any], now: float) -> Message:
    topic, payload, qos, retain, properties, origin, remaining = fields
    return Message(topic=topic, payload=payload, qos=qos, retain=retain,
                   properties=unpack_properties(properties), origin=origin,
                   expires_at=None if remaining is None else now + remaining,
                   received_at=now)


def pack_forward(message_id: str, message: Message, shares: list[str], now: float) -> bytes:
    return bytes(msgpack.packb([FORWARD, message_id, shares, *_message_fields(message, now)],
                               use_bin_type=True))


def pack_forward_only(message_id: str, message: Message, client_ids: list[str],
                      now: float) -> bytes:
    return bytes(msgpack.packb([FORWARD_ONLY, message_id, client_ids,
                                *_message_fields(message, now)], use_bin_type=True))


def pack_takeover(client_id: str, owner: str, reply_to: str) -> bytes:
    return bytes(msgpack.packb([TAKEOVER, client_id, owner, reply_to], use_bin_type=True))


def pack_taken(client_id: str, owner: str) -> bytes:
    return bytes(msgpack.packb([TAKEN, client_id, owner], use_bin_type=True))


def unpack_entry(data: bytes, now: float) -> Forwarded | Takeover | Taken:
    """ValueError if it is none of them."""
    try:
        fields = msgpack.unpackb(data, raw=False)
        kind = fields[0]
        if kind in (FORWARD, FORWARD_ONLY):
            message = _message(fields[3:], now)
            message.cluster_id = fields[1]
            if kind == FORWARD:
                return Forwarded(fields[1], message, list(fields[2]))
            return Forwarded(fields[1], message, [], list(fields[2]))
        if kind == TAKEOVER:
            return Takeover(fields[1], fields[2], fields[3])
        if kind == TAKEN:
            return Taken(fields[1], fields[2])
    except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
        raise ValueError(f"undecodable stream entry: {exc}") from None
    raise ValueError(f"unknown stream entry kind {kind!r}")


def pack_retained(message: Message, now: float) -> bytes:
    """With the wall-clock time, so that its expiry counts from when it was stored."""
    return bytes(msgpack.packb([time.time(), *_message_fields(message, now)],
                               use_bin_type=True))


def unpack_retained(data: bytes, now: float) -> Message:
    """ValueError if it is not a retained message."""
    try:
        stored_at, *fields = msgpack.unpackb(data, raw=False)
        if fields[-1] is not None:
            fields[-1] = max(0.0, fields[-1] - max(0.0, time.time() - stored_at))
        return _message(fields, now)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError(f"undecodable retained message: {exc}") from None
