"""mosquitto_sub's ``-F`` output format: ``%`` sequences for the message's parts (topic,
payload, QoS, properties, JSON, times), ``@`` for strftime, ``\\`` escapes; with field widths
(``%10t``, ``%-10.10t``) and zero padding (``%05l``) where mosquitto allows them."""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Callable
from typing import Any

_SEQUENCE = re.compile(rb"%(?P<flags>[-0]*)(?P<width>\d*)(?:\.(?P<max>\d+))?(?P<code>.)"
                       rb"|@(?P<time>.)|\\(?P<escape>.)", re.DOTALL)
# Which sequences take a field width, zero padding, a maximum width (mosquitto_sub(1)).
_WIDTH = set(b"ACEFIlmpRStxX")
_ZERO = set(b"AEFlmSXx")
_MAXIMUM = set(b"CIRt")
_ESCAPES = {b"\\": b"\\", b"0": b"\x00", b"a": b"\a", b"e": b"\x1b", b"n": b"\n",
            b"t": b"\t"}


def _property(message: Any, name: str) -> Any:
    properties = getattr(message, "properties", None)
    return getattr(properties, name, None) if properties is not None else None


def _timestamp(now: float) -> str:
    return datetime.datetime.fromtimestamp(now).astimezone().isoformat(timespec="microseconds")


def _json(message: Any, now: float, raw: bool) -> bytes:
    payload: Any
    if raw:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            raise ValueError(f"Message payload is not valid JSON on topic {message.topic}") \
                from None
    else:
        payload = message.payload.decode("utf-8", errors="replace")
    return json.dumps({"tst": _timestamp(now), "topic": message.topic, "qos": message.qos,
                       "retain": int(message.retain), "payload": payload},
                      separators=(",", ":")).encode()


def _fields(message: Any, now: float) -> dict[bytes, Callable[[], bytes | None]]:
    def text(value: Any) -> bytes | None:
        return None if value is None else str(value).encode()

    def user() -> bytes | None:
        pairs = _property(message, "UserProperty") or []
        return b" ".join(f"{k}:{v}".encode() for k, v in pairs) or None

    identifiers = _property(message, "SubscriptionIdentifier")
    return {
        b"t": lambda: message.topic.encode(), b"p": lambda: message.payload,
        b"q": lambda: text(message.qos), b"r": lambda: text(int(message.retain)),
        b"m": lambda: text(message.mid), b"l": lambda: text(len(message.payload)),
        b"x": lambda: message.payload.hex().encode(),
        b"X": lambda: message.payload.hex().upper().encode(),
        b"A": lambda: text(_property(message, "TopicAlias")),
        b"C": lambda: text(_property(message, "ContentType")),
        b"D": lambda: _property(message, "CorrelationData"),
        b"E": lambda: text(_property(message, "MessageExpiryInterval")),
        b"F": lambda: text(_property(message, "PayloadFormatIndicator")),
        b"R": lambda: text(_property(message, "ResponseTopic")),
        b"S": lambda: text(identifiers[0] if identifiers else None),
        b"P": user, b"I": lambda: datetime.datetime.fromtimestamp(now).astimezone()
        .strftime("%Y-%m-%dT%H:%M:%S%z").encode(),
        b"U": lambda: f"{now:.9f}".encode(),
        b"j": lambda: _json(message, now, raw=False),
        b"J": lambda: _json(message, now, raw=True),
        b"%": lambda: b"%",
    }


def render(template: str, message: Any, now: float | None = None) -> bytes:
    """``message`` printed as ``template`` says. ValueError for %J on a payload that is not
    JSON."""
    now = time.time() if now is None else now
    fields = _fields(message, now)
    stamp = datetime.datetime.fromtimestamp(now)

    def one(match: re.Match[bytes]) -> bytes:
        if match["escape"] is not None:
            return _ESCAPES.get(match["escape"], b"\\" + match["escape"])
        if match["time"] is not None:
            letter = match["time"].decode()
            if letter == "@":
                return b"@"
            if letter == "N":
                return f"{int(now * 1e9) % 1_000_000_000:09d}".encode()
            return stamp.strftime("%" + letter).encode()
        produce = fields.get(match["code"])
        if produce is None:
            return match[0]
        value = produce() or b""
        code = match["code"][0]
        if match["max"] and code in _MAXIMUM:
            value = value[:int(match["max"])]
        width = int(match["width"] or 0) if code in _WIDTH else 0
        flags = match["flags"] or b""
        if len(value) < width:
            pad = width - len(value)
            if b"-" in flags:
                value += b" " * pad
            else:
                value = (b"0" if b"0" in flags and code in _ZERO else b" ") * pad + value
        return value

    return _SEQUENCE.sub(one, template.encode())
