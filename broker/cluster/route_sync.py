"""Routes between nodes: this node writes its own set of filters (and announces each change
on a channel, by a script), and keeps every other node's set (routes.py), loading a node's set
in full when an announcement shows a gap, and all of them after a (re)join."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from . import scripts as keys
from .context import NodeContext
from .link import RedisLink, Reply, failed

_OPS_PER_SCRIPT = 1000


class RouteSync:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._ops: list[str] = []  # this turn's changes of this node's filters
        ctx.core.index.watch_routes(self._changed)

    def register(self, cmd: RedisLink) -> None:
        """At (re)registration: this node's whole set replaces what Redis has of it."""
        ctx = self.ctx
        self._ops.clear()
        cmd.command("EVALSHA", keys.ROUTES_CHANGE.sha, 2, keys.routes_key(ctx.node),
                    keys.routes_version_key(ctx.node), ctx.node, repr(time.time()), "=",
                    *ctx.core.index.routes())

    def load_all(self, nodes: list[str]) -> None:
        for node in nodes:
            if node != self.ctx.node:
                self._load_node(node)

    def reset(self) -> None:
        """The link is lost: the whole set is written again at the next registration."""
        self._ops.clear()

    @property
    def pending(self) -> bool:
        return bool(self._ops)

    def flush(self) -> None:
        """This turn's changes of this node's filters, queued now."""
        ctx = self.ctx
        cmd = ctx.ready_cmd()
        if cmd is None or not ctx.registered or not self._ops:
            return
        ops, self._ops = self._ops, []
        for start in range(0, len(ops), _OPS_PER_SCRIPT):
            cmd.command("EVALSHA", keys.ROUTES_CHANGE.sha, 2, keys.routes_key(ctx.node),
                        keys.routes_version_key(ctx.node), ctx.node, repr(time.time()),
                        *ops[start:start + _OPS_PER_SCRIPT])

    def add(self, filters: list[str]) -> None:
        """Filters into this node's route set ahead of the sessions that will have them."""
        if self.ctx.registered:
            self._ops.extend("+" + f for f in filters)

    def remove(self, filters: list[str]) -> None:
        """Filters added ahead that no session here has after all."""
        if self.ctx.registered:
            index = self.ctx.core.index
            self._ops.extend("-" + f for f in filters if not index.has_route(f))

    def _changed(self, topic_filter: str, added: bool) -> None:
        if self.ctx.registered:  # else the whole set is written when this node registers
            self._ops.append(("+" if added else "-") + topic_filter)

    def _load_node(self, node: str) -> None:
        cmd = self.ctx.ready_cmd()
        if cmd is None:
            return
        cmd.command("EVALSHA", keys.ROUTES_LOAD.sha, 2, keys.routes_key(node),
                    keys.routes_version_key(node), reply=partial(self._node_loaded, node))

    def _node_loaded(self, node: str, reply: Reply) -> None:
        if failed(reply):
            return
        version, filters = reply
        self.ctx.routes.replace(node, {f.decode() for f in filters}, int(version))
        self.ctx.stats.route_loads += 1

    def event(self, event: list[Any]) -> None:
        """An announcement of another node's change."""
        node_raw, version, sent_at, ops = event
        node = node_raw.decode()
        if node == self.ctx.node:
            return
        if isinstance(ops, list) and self.ctx.routes.apply(
                node, int(version), [op.decode() for op in ops]):
            self.ctx.stats.route_delay.observe(max(0.0, time.time() - float(sent_at)))
            return
        self._load_node(node)  # a new node, its reset, or a missed event
