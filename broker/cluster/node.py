"""Cluster mode: this broker is one node of several that behave as one, sharing nothing but a
Redis (or Valkey) deployment. This module joins the parts together and is the broker's
:class:`~mqlite.broker.engine.services.Cluster`:

- membership.py: a key per node with a TTL, refreshed by a heartbeat; an epoch from ``INCR``.
- route_sync.py: each node writes only its own set of filters; every node keeps the others'.
- Forwarding (here): a message is delivered here and sent once to each other node with a
  matching route, into that node's stream; inbox.py reads this node's stream.
- holds.py: a QoS 1/2 PUBLISH (and a SUBSCRIBE) is answered only once Redis has answered the
  writes of its turn, as the store's commit comes before them in one node.
- retained_sync.py: retained messages live in a Redis hash; each node keeps a copy.
- claims.py: client ids; sessions.py: persistent sessions that move between nodes.

Every Redis round trip of a loop turn leaves in one write per connection. Three connections:
commands, the channel subscription, and the blocking read of this node's stream.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Container
from typing import Any

import msgpack  # type: ignore[import-untyped]  # ships no type information

from ..engine.connection import Connection
from ..engine.routing import route
from ..engine.services import ClusterHost, RouteResult
from ..engine.session import Session
from ..message import Message
from ..net.loop_driven import SocketIO
from . import scripts as keys
from .acks import StreamAcks
from .claims import Claims
from .config import ClusterConfig
from .context import NODE_SYS, NodeContext
from .holds import AckHolds
from .inbox import InboxReader
from .link import READY, RedisLink, Reply, failed
from .membership import Membership
from .retained_sync import RetainedSync
from .route_sync import RouteSync
from .routes import RouteTable
from .sessions import NodeSessions
from .stats import ClusterStats
from .store import RedisStore
from .wire import pack_forward

log = logging.getLogger("mqlite.cluster")

_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 5.0
_ADOPTION_RECHECK = 0.25  # seconds between looks at another node's adoption of this id


class _Except:
    """Every shared subscription but those another node serves."""

    __slots__ = ("served_elsewhere",)

    def __init__(self, served_elsewhere: set[str]) -> None:
        self.served_elsewhere = served_elsewhere

    def __contains__(self, share: object) -> bool:
        return share not in self.served_elsewhere


class ClusterNode:
    def __init__(self, core: ClusterHost, io: SocketIO, config: ClusterConfig,
                 on_fenced: Callable[[], None], store: RedisStore | None = None,
                 acks: StreamAcks | None = None) -> None:
        """``store``: where the persistent sessions are (None: they stay on their node);
        ``acks``: the stream entries to acknowledge, shared with that store."""
        self.core = core
        self.io = io
        self.config = config
        self.address = config.address
        self.on_fenced = on_fenced
        ctx = self.ctx = NodeContext(core, config)
        # Stream entries handled this turn (shared with the store, which acknowledges them
        # with the session writes they caused).
        self.acks = acks if acks is not None else StreamAcks()
        self.acks.stream = keys.inbox_key(ctx.node)
        self.route_sync = RouteSync(ctx)
        self.sessions = NodeSessions(ctx, store, self.route_sync) if store is not None \
            else None
        self.claims = Claims(ctx, self.sessions)
        self.stream = InboxReader(ctx, self.acks, self.sessions, self.claims, self._link_lost)
        self.membership = Membership(ctx, self.sessions, self._rejoin_adopted, self._fenced)
        self.retained = RetainedSync(ctx)
        self.holds = AckHolds(ctx, self.route_sync)
        self._waiting_logged = False
        self._subscribed = 0  # channel subscriptions confirmed
        self._sent = 0
        self._share_turns: dict[str, int] = {}
        self._backoff = _BACKOFF_FIRST
        self._outage_since: float | None = None
        self._stopping = False
        self._recovered = 0  # the epoch whose sessions were recovered

    @property
    def available(self) -> bool:
        return self.ctx.available

    @property
    def node_id(self) -> str:
        return self.ctx.node

    @property
    def routes(self) -> RouteTable:
        return self.ctx.routes

    @property
    def stats(self) -> ClusterStats:
        return self.ctx.stats

    # -- start, stop, outages --------------------------------------------------------------

    def start(self) -> None:
        log.info("cluster: node %s connecting to Redis at %s", self.ctx.node, self.address)
        self._connect()

    def _connect(self) -> None:
        if self._stopping:
            return
        ctx = self.ctx
        try:
            ctx.cmd = RedisLink(self.io, self.address, "commands", self._link_ready,
                                self._link_lost)
            ctx.sub = RedisLink(self.io, self.address, "events", self._link_ready,
                                self._link_lost, on_push=self._event)
            ctx.inbox = RedisLink(self.io, self.address, "inbox", self._link_ready,
                                  self._link_lost)
        except OSError as exc:
            self._link_lost(None, f"cannot connect to {self.address}: {exc.strerror or exc}")

    def stop(self) -> None:
        """A clean stop (after the broker's last commit): this node's membership key goes,
        so a surviving node adopts its persistent sessions (they are in Redis) at its next
        heartbeat, and what was on its way to this node is delivered from its stream."""
        self._stopping = True
        ctx = self.ctx
        cmd = ctx.ready_cmd()
        if cmd is not None and ctx.registered:
            cmd.command("DEL", keys.node_key(ctx.node))
            cmd.flush()
        for link in (ctx.cmd, ctx.sub, ctx.inbox):
            if link is not None:
                link.close()
        ctx.available = False

    def _link_ready(self, link: RedisLink) -> None:
        if link is self.ctx.sub:
            link.push_command("SUBSCRIBE", keys.ROUTE_EVENTS, keys.RETAINED_EVENTS)
        self._maybe_join()

    def _maybe_join(self) -> None:
        ctx = self.ctx
        links = (ctx.cmd, ctx.sub, ctx.inbox)
        if ctx.registered or any(link is None or link.state != READY for link in links):
            return
        if self._subscribed < 2:
            return  # subscribed first: no event may fall between a load and the channel
        cmd = ctx.cmd
        assert cmd is not None
        for script in keys.ALL:
            cmd.command("SCRIPT", "LOAD", script.source)
        if self.sessions is not None and not self.membership.took_id:
            # A survivor adopting an earlier process's sessions reads this id's stream
            # until it is done (a couple of seconds): this one joins after it.
            self._check_adoption()
        else:
            self._take_epoch()

    def _adoption_checked(self, reply: Reply) -> None:
        if failed(reply):
            return  # the link is lost: a reconnect starts over
        if int(reply):
            if not self._waiting_logged:
                self._waiting_logged = True
                log.warning("cluster: another node is adopting the sessions of an earlier "
                            "process with node id %s; joining once it is done", self.ctx.node)
            self.core.timers.call_at(self.core.clock.monotonic() + _ADOPTION_RECHECK,
                                     self._check_adoption)
            return
        self._take_epoch()

    def _check_adoption(self) -> None:
        cmd = self.ctx.ready_cmd()
        if cmd is not None and not self.ctx.registered:
            cmd.command("EXISTS", keys.adopt_key(self.ctx.node), reply=self._adoption_checked)

    def _take_epoch(self) -> None:
        cmd = self.ctx.cmd
        assert cmd is not None
        if self.ctx.epoch:
            self._register()
        else:
            cmd.command("INCR", keys.EPOCH, reply=self._got_epoch)

    def _got_epoch(self, reply: Reply) -> None:
        if failed(reply):
            return  # the link is lost: a reconnect starts over
        self.ctx.epoch = int(reply)
        self._register()

    def _register(self) -> None:
        ctx = self.ctx
        cmd = ctx.cmd
        assert cmd is not None
        ctx.registered = self.acks.readable = True
        self.membership.register(cmd)
        self.route_sync.register(cmd)
        self.stream.start(cmd)
        cmd.command("SMEMBERS", keys.MEMBERS, reply=self._load_routes)
        self.retained.load(cmd)

    def _load_routes(self, reply: Reply) -> None:
        if failed(reply):
            return
        cmd = self.ctx.cmd
        assert cmd is not None
        self.route_sync.load_all([raw.decode() for raw in reply])
        cmd.after_replies(self._joined)

    def _joined(self, ok: bool) -> None:
        if not ok:
            return
        ctx = self.ctx
        if self.sessions is not None and self._recovered != ctx.epoch:
            if not self.sessions.recover():
                self._link_lost(None, "reading this node's sessions failed")
                return
            self._recovered = ctx.epoch
        ctx.available = True
        self._backoff = _BACKOFF_FIRST
        if self._outage_since is not None:
            log.warning("cluster: Redis at %s is back after %.1f s; node %s rejoined",
                        self.address, time.monotonic() - self._outage_since, ctx.node)
        log.info("cluster: node %s joined (epoch %d, %d other node(s), %d route(s), "
                 "%d retained)", ctx.node, ctx.epoch, len(ctx.routes.by_node),
                 len(ctx.routes), len(self.core.retained.topics()))
        self._outage_since = None
        self.membership.start_beating()

    def _link_lost(self, link: RedisLink | None, reason: str) -> None:
        ctx = self.ctx
        if self._stopping or (link is not None and link not in (ctx.cmd, ctx.sub, ctx.inbox)):
            return
        if self._outage_since is None or ctx.available:
            log.warning("cluster: lost Redis at %s (%s link: %s); refusing new connections "
                        "and remote QoS 1/2 until it is back", self.address,
                        link.name if link is not None else "every", reason)
            ctx.stats.outages += 1
        ctx.available = False
        self._outage_since = self._outage_since or time.monotonic()
        ctx.registered = self.acks.readable = False
        self._subscribed = 0
        links = (ctx.cmd, ctx.sub, ctx.inbox)
        ctx.cmd = ctx.sub = ctx.inbox = None
        for other in links:
            if other is not None and other is not link:
                other.close()  # its unanswered commands fail
        self.route_sync.reset()
        self.stream.reset()  # unacknowledged entries are read again from the stream
        self.holds.fail_all()
        self.claims.outage()
        delay = self._backoff * random.uniform(0.5, 1.5)
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
        self.core.timers.call_at(self.core.clock.monotonic() + delay, self._connect)

    def _rejoin_adopted(self) -> None:
        """This node's key expired (it was paused, or cut off, past its TTL) and another node
        adopted its sessions: they are that node's now. Its clients are closed, and it joins
        again under a new epoch."""
        log.error("cluster: node %s was taken for dead and its sessions adopted; closing "
                  "its clients and joining again under a new epoch", self.ctx.node)
        if self.sessions is not None:
            self.sessions.forget_all("this node was taken for dead; its sessions moved")
        self.ctx.epoch = 0
        self.membership.took_id = False
        self._link_lost(None, "this node was adopted by another")

    def _fenced(self) -> None:
        """Another process registered this node id (a newer epoch): this one stops."""
        self._stopping = True
        self.ctx.available = False
        self.on_fenced()

    def sessions_fenced(self, client_ids: list[str]) -> None:
        """The store refused writes to these sessions: another node owns them now."""
        if self.sessions is not None:
            self.sessions.fenced(client_ids)

    def sys_values(self) -> dict[str, str]:
        return self.membership.sys_values()

    # -- the end of a loop turn ------------------------------------------------------------

    def flush(self) -> None:
        """After the turn's commit: this turn's route changes and stream acknowledgements,
        then every link's queued commands in one write each. Connections held this turn
        are answered once Redis has answered all of it."""
        ctx = self.ctx
        cmd = ctx.ready_cmd()
        if cmd is not None and ctx.registered:
            self.route_sync.flush()
            taken = self.acks.take()
            if taken is not None:
                inbox, acks = taken
                cmd.command("XACK", inbox, keys.GROUP, *acks)
                cmd.command("XDEL", inbox, *acks)
            self.holds.queue(cmd)
        for link in (ctx.cmd, ctx.sub, ctx.inbox):
            if link is not None:
                link.flush()

    def hold(self, conn: Connection, session: Session | None, qos2_id: int | None) -> None:
        """What ``conn`` was sent this turn (a PUBACK, a SUBACK) waits until Redis has
        answered the writes queued this turn (forwards, a retained message, routes)."""
        self.holds.hold(conn, session, qos2_id)

    # -- what operators see ----------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """For /api/v1/cluster, /metrics and the stats (JSON-ready)."""
        ctx = self.ctx
        stats = ctx.stats
        return {
            "node_id": ctx.node, "epoch": ctx.epoch, "available": ctx.available,
            "members": sorted({*self.membership.members, ctx.node}),
            "redis": str(self.address),
            "outage_seconds": 0.0 if self._outage_since is None
            else time.monotonic() - self._outage_since,
            # Other nodes known by their routes, and how many filters each has.
            "nodes": {node: len(filters) for node, filters in
                      sorted(ctx.routes.by_node.items()) if filters},
            "local_routes": len(self.core.index.routes()),
            "owned_client_ids": len(ctx.owned),
            "forwarded": stats.forwarded, "received": stats.received,
            "duplicates": stats.duplicates, "forwards_dropped": stats.forwards_dropped,
            "outages": stats.outages, "route_loads": stats.route_loads,
            "takeovers": stats.takeovers, "inbox_pauses": stats.inbox_pauses,
            "sessions_adopted": self.sessions.adopted_total if self.sessions else 0,
            "sessions_fenced": self.sessions.fenced_total if self.sessions else 0,
            "route_propagation_seconds": stats.route_delay,
        }

    # -- client ids (claims.py) ----------------------------------------------------------

    def claim(self, conn: Connection, client_id: str,
              proceed: Callable[[bool, float], None]) -> None:
        self.claims.claim(conn, client_id, proceed)

    def session_ended(self, client_id: str) -> None:
        self.claims.session_ended(client_id)

    # -- the channel: route and retained events ------------------------------------------

    def _event(self, reply: Reply) -> None:
        """A reply on the subscriber link: a subscription's confirmation, or an event."""
        kind = reply[0]
        if kind == b"subscribe":
            self._subscribed = int(reply[2])
            self._maybe_join()
            return
        if kind != b"message":
            return
        try:
            event = msgpack.unpackb(reply[2], raw=True)
        except (ValueError, msgpack.UnpackException):
            log.warning("cluster: undecodable event on %s", reply[1])
            return
        if reply[1] == keys.ROUTE_EVENTS.encode():
            self.route_sync.event(event)
        else:
            self.retained.event(event)

    # -- publishing ------------------------------------------------------------------------

    def needs_remote(self, topic: str, retain: bool) -> bool:
        """Whether a message to ``topic`` needs Redis: another node routes it, or it is to be
        retained (the retained messages live there)."""
        return (retain and not topic.startswith("$")) or bool(self.ctx.routes.match(topic))

    def publish(self, message: Message, now: float) -> RouteResult:
        """Deliver here, and forward once to each other node with a matching route; a shared
        subscription's member is picked among all nodes that have one (round robin)."""
        ctx = self.ctx
        topic = message.topic
        if topic.startswith("$") and not topic.startswith(NODE_SYS):
            return route(self.core, message, now)  # $SYS/broker/... is each node's own
        if message.retain and ctx.available and topic[:1] != "$":
            assert ctx.cmd is not None
            self.retained.retain(ctx.cmd, message, now)
        targets = ctx.routes.match(topic)
        if not targets:
            if self.sessions is None or not self.sessions.moved or not ctx.available:
                return route(self.core, message, now)
            message_id = self._message_id(message)
            result = route(self.core, message, now)
            passed = self.sessions.pass_on(message, message_id, now)
            return RouteResult(result.matched + passed, result.congested) if passed else result
        # Named before it is delivered here: a delivery stored for a persistent session
        # keeps the id, so a copy that reaches the session again after it moved is known.
        message_id = self._message_id(message)
        remote: dict[str, list[str]] = {node: [] for node in targets.nodes}
        shares: Container[str] | None = None
        if targets.shares:
            elsewhere: set[str] = set()
            index = self.core.index
            for share, nodes in targets.shares.items():
                candidates = [*nodes, ctx.node] if index.has_route(share) else nodes
                turn = self._share_turns.get(share, 0)
                self._share_turns[share] = turn + 1
                pick = candidates[turn % len(candidates)]
                if pick != ctx.node:
                    elsewhere.add(share)
                    remote.setdefault(pick, []).append(share)
            shares = _Except(elsewhere)
        matched, congested = route(self.core, message, now, shares)
        if not ctx.available:
            ctx.stats.forwards_dropped += len(remote)
            return RouteResult(matched, congested)
        self._forward(message_id, message, remote, now)
        sessions = self.sessions
        if sessions is not None and sessions.busy:
            # Delivered here now: a copy that comes back for a moved or adopted session is
            # not delivered again (see sessions.py).
            ctx.seen[message_id] = self.core.clock.monotonic()  # not the turn's: see inbox.py
            if sessions.moved:
                sessions.pass_on(message, message_id, now)
        return RouteResult(matched + len(remote), congested)

    def _message_id(self, message: Message) -> str:
        self._sent += 1
        ctx = self.ctx
        message_id = message.cluster_id = f"{ctx.node}|{ctx.epoch}|{self._sent}"
        return message_id

    def _forward(self, message_id: str, message: Message, remote: dict[str, list[str]],
                 now: float) -> None:
        cmd = self.ctx.cmd
        assert cmd is not None
        maxlen = self.config.stream_maxlen
        for node, shares in remote.items():
            cmd.command("XADD", keys.inbox_key(node), "MAXLEN", "~", maxlen, "*", "m",
                        pack_forward(message_id, message, shares, now))
        self.ctx.stats.forwarded += len(remote)
