"""msgpack forms of MQTT 5 properties and wills, for the SQLite store."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]  # ships no type information

from mqlite.protocol import EMPTY_PROPERTIES, Properties, Will

_TUPLES = ("subscription_identifier",)


def pack_properties(properties: Properties) -> bytes | None:
    if properties is EMPTY_PROPERTIES or properties.is_empty():
        return None
    return bytes(msgpack.packb(properties.present(), use_bin_type=True))


def unpack_properties(data: bytes | None) -> Properties:
    if not data:
        return EMPTY_PROPERTIES
    values: dict[str, Any] = msgpack.unpackb(data, raw=False)
    if "user_property" in values:
        values["user_property"] = tuple(tuple(pair) for pair in values["user_property"])
    for name in _TUPLES:
        if name in values:
            values[name] = tuple(values[name])
    return Properties(**values)


def pack_will(will: Will | None) -> bytes | None:
    if will is None:
        return None
    return bytes(msgpack.packb([will.topic, will.payload, will.qos, will.retain,
                                pack_properties(will.properties)], use_bin_type=True))


def unpack_will(data: bytes | None) -> Will | None:
    if not data:
        return None
    topic, payload, qos, retain, properties = msgpack.unpackb(data, raw=False)
    return Will(topic=topic, payload=payload, qos=qos, retain=retain,
                properties=unpack_properties(properties))
