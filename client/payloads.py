"""msgpack payloads: publish a Python object, get it back from a received message."""

from __future__ import annotations

import copy
from typing import Any

import msgpack  # type: ignore[import-untyped]  # ships no type information

from .mqtt5_types import PacketTypes, Properties

MSGPACK_CONTENT_TYPE = "application/msgpack"


def pack_msgpack(obj: Any, properties: Properties | None, v5: bool
                 ) -> tuple[bytes, Properties | None]:
    """The payload for ``obj`` and, with MQTT 5, properties saying it is msgpack (a copy of
    ``properties`` with ``ContentType`` set; the caller's object is left alone)."""
    payload = bytes(msgpack.packb(obj, use_bin_type=True))
    if not v5:
        return payload, properties
    props = copy.copy(properties) if properties is not None else Properties(PacketTypes.PUBLISH)
    props.ContentType = MSGPACK_CONTENT_TYPE
    return payload, props
