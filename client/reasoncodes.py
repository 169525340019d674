"""paho-mqtt's ``paho.mqtt.reasoncodes``, with ``ReasonCodes``, its older name."""

from __future__ import annotations

import warnings
from typing import Any

from .mqtt5_types import ReasonCode


class _EitherName(type):
    """``isinstance(code, ReasonCodes)`` holds for every ReasonCode, as old programs test."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, ReasonCode)


class ReasonCodes(ReasonCode, metaclass=_EitherName):
    """paho 1.x's name of :class:`ReasonCode`, deprecated (as in paho 2.x)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn("ReasonCodes is deprecated, use ReasonCode (singular) instead",
                      category=DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)

__all__ = ["ReasonCode", "ReasonCodes"]
