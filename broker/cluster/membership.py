"""Membership: a key per node with a TTL, refreshed by a heartbeat (a script that also tells
this node if another process took its id, or if it was taken for dead and adopted), and the
set of member ids. At each heartbeat the live members are read, with what each says of itself
(its clients, when it started), for the cluster's totals; a listed member whose key expired
is dead, and its persistent sessions are adopted (sessions.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import msgpack  # type: ignore[import-untyped]  # ships no type information

from . import scripts as keys
from .context import NodeContext
from .link import RedisLink, Reply, failed
from .sessions import NodeSessions

log = logging.getLogger("mqlite.cluster")


class Membership:
    def __init__(self, ctx: NodeContext, sessions: NodeSessions | None,
                 on_adopted: Callable[[], None], on_fenced: Callable[[], None]) -> None:
        """``on_adopted``: this node was taken for dead; ``on_fenced``: another process
        registered its id."""
        self.ctx = ctx
        self._sessions = sessions
        self._on_adopted = on_adopted
        self._on_fenced = on_fenced
        self.took_id = False  # this process has registered its node id once
        self._beats = 0  # heartbeat timer chains started (only the last one runs)
        # The live nodes (their membership keys), with what each says of itself, as read at
        # the last heartbeat.
        self.members: dict[str, dict[str, Any]] = {}

    def register(self, cmd: RedisLink) -> None:
        node = self.ctx.node
        if not self.took_id:  # the first registration takes the node id (from a killed
            self.took_id = True  # predecessor whose key has not expired, say)
            cmd.command("SET", keys.node_key(node), self._member_value(), "PX", self._ttl_ms())
            # An adoption of an earlier process with this id concerns that one only.
            cmd.command("DEL", keys.adopted_key(node))
        else:
            self._heartbeat(cmd)
        cmd.command("SADD", keys.MEMBERS, node)

    def start_beating(self) -> None:
        """A new heartbeat chain (once joined); one from before an outage ends at its next
        turn."""
        self._beats += 1
        self.ctx.core.timers.call_at(self.ctx.core.clock.monotonic() + self.ctx.config.node_ttl / 5,
                                     self._beat, self._beats)

    def _beat(self, chain: int) -> None:
        cmd = self.ctx.cmd
        if not self.ctx.available or chain != self._beats or cmd is None:
            return  # a timer from before an outage
        self._heartbeat(cmd)
        cmd.command("SMEMBERS", keys.MEMBERS, reply=self._listed)
        self.ctx.core.timers.call_at(self.ctx.core.clock.monotonic() + self.ctx.config.node_ttl / 5,
                                     self._beat, chain)

    def _heartbeat(self, cmd: RedisLink) -> None:
        ctx = self.ctx
        cmd.command("EVALSHA", keys.HEARTBEAT.sha, 2, keys.node_key(ctx.node),
                    keys.adopted_key(ctx.node), f"{ctx.epoch}|", self._member_value(),
                    self._ttl_ms(), reply=self._beaten)

    def _beaten(self, reply: Reply) -> None:
        if reply == 2:
            self._on_adopted()
        elif reply == 0:
            log.error("cluster: node id %s was registered by another process (a newer "
                      "epoch); stopping this one", self.ctx.node)
            self._on_fenced()

    def _listed(self, reply: Reply) -> None:
        cmd = self.ctx.cmd
        if failed(reply) or not reply or cmd is None:
            return
        nodes = [raw.decode() for raw in reply]
        cmd.command("MGET", *map(keys.node_key, nodes), reply=partial(self._read, nodes))

    def _read(self, nodes: list[str], reply: Reply) -> None:
        """The nodes whose membership keys live, with what each says of itself."""
        if failed(reply):
            return
        members = {}
        for node, value in zip(nodes, reply, strict=True):
            if value is None:
                if self._sessions is not None and node != self.ctx.node:
                    self._sessions.node_gone(node)  # listed, but its key expired
                continue
            try:
                members[node] = msgpack.unpackb(bytes.fromhex(value.split(b"|", 1)[1].decode()))
            except (ValueError, IndexError, msgpack.UnpackException):
                continue
        self.members = members

    def sys_values(self) -> dict[str, str]:
        members = dict(self.members)
        members[self.ctx.node] = {"clients": self.ctx.core.stats.clients_connected}
        return {"cluster/nodes": str(len(members)),
                "cluster/clients/connected": str(sum(int(info.get("clients", 0))
                                                     for info in members.values()))}

    def _member_value(self) -> str:
        """"epoch|" and what the other nodes may show of this one."""
        core = self.ctx.core
        started = time.time() - (time.monotonic() - core.started)
        info = bytes(msgpack.packb({"clients": core.stats.clients_connected,
                                    "started": started}))
        return f"{self.ctx.epoch}|{info.hex()}"

    def _ttl_ms(self) -> int:
        return max(1, int(self.ctx.config.node_ttl * 1000))
