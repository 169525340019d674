"""Retained messages in cluster mode live in a Redis hash, versioned; each node keeps a copy
(the broker's own retained store), loaded at (re)join and updated from the events that the
writes publish, in Redis's order. A gap in the versions loads the whole hash again."""

from __future__ import annotations

import logging
from typing import Any

from ..message import Message
from . import scripts as keys
from .context import NodeContext
from .link import RedisLink, Reply, failed
from .wire import pack_retained, unpack_retained

log = logging.getLogger("mqlite.cluster")


class RetainedSync:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._version = 0

    def retain(self, cmd: RedisLink, message: Message, now: float) -> None:
        """Set (or, with an empty payload, delete) the retained message of its topic."""
        packed = pack_retained(message, now) if message.payload else b""
        cmd.command("EVALSHA", keys.RETAIN.sha, 2, keys.RETAINED, keys.RETAINED_VERSION,
                    message.topic, packed)

    def load(self, cmd: RedisLink) -> None:
        """The whole hash replaces this node's copy."""
        cmd.command("EVALSHA", keys.RETAINED_LOAD.sha, 2, keys.RETAINED,
                    keys.RETAINED_VERSION, reply=self._loaded)

    def _loaded(self, reply: Reply) -> None:
        if failed(reply):
            return
        version, flat = reply
        now = self.ctx.core.clock.monotonic()
        retained = self.ctx.core.retained
        for topic in list(retained.topics()):
            retained.delete(topic)
        for index in range(0, len(flat), 2):
            self._set(flat[index].decode(), flat[index + 1], now)
        self._version = int(version)

    def event(self, event: list[Any]) -> None:
        """A node's change of one topic's retained message."""
        version, topic, packed = int(event[0]), event[1].decode(), event[2]
        if version <= self._version:
            return
        if version != self._version + 1:
            cmd = self.ctx.ready_cmd()
            if cmd is not None:
                self.load(cmd)
            return
        self._version = version
        if packed:
            self._set(topic, packed, self.ctx.core.clock.monotonic())
        else:
            self.ctx.core.retained.delete(topic)

    def _set(self, topic: str, packed: bytes, now: float) -> None:
        try:
            self.ctx.core.retained.set(unpack_retained(packed, now))
        except ValueError as exc:
            log.warning("cluster: retained message on %r skipped: %s", topic, exc)
