"""What every part of a cluster node shares: which node it is (id, epoch), its links to Redis
and whether it is joined, the broker it serves, and the records more than one part reads.
The parts (membership, route and retained sync, the stream reader, the claims and sessions,
the acknowledgement holds) each get this one object, built by node.py."""

from __future__ import annotations

from collections import OrderedDict

from ..engine.services import ClusterHost
from . import scripts as keys
from .config import ClusterConfig
from .link import READY, RedisLink
from .routes import RouteTable
from .stats import ClusterStats

NODE_SYS = "$SYS/broker/node/"  # each node's own $SYS tree, seen on every node


class NodeContext:
    def __init__(self, core: ClusterHost, config: ClusterConfig) -> None:
        self.core = core
        self.config = config
        self.node = config.node_id
        self.epoch = 0
        # True while every link is up and this node is registered, subscribed and loaded.
        self.available = False
        # This connection's registration is queued: commands about this node's own keys
        # (routes, acknowledgements) may follow it.
        self.registered = False
        self.cmd: RedisLink | None = None  # commands
        self.sub: RedisLink | None = None  # the channel subscription
        self.inbox: RedisLink | None = None  # the blocking read of this node's stream
        self.stats = ClusterStats()
        self.routes = RouteTable()  # the other nodes' routes
        # Forwarded message ids delivered here, with when (monotonic).
        self.seen: OrderedDict[str, float] = OrderedDict()
        self.owned: dict[str, str] = {}  # client id -> this node's claim on it

    def ready_cmd(self) -> RedisLink | None:
        """The command link, if it is up."""
        cmd = self.cmd
        return cmd if cmd is not None and cmd.state == READY else None

    def send_entry(self, node: str, data: bytes) -> None:
        """A control entry into ``node``'s stream (a take-over and its answer)."""
        cmd = self.ready_cmd()
        if cmd is not None:
            cmd.command("XADD", keys.inbox_key(node), "MAXLEN", "~",
                        self.config.stream_maxlen, "*", "m", data)
