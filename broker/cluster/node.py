"""Cluster mode: this broker is one node of several that behave as one, sharing nothing but a
Redis (or Valkey) deployment.

- Membership: a key per node with a TTL, refreshed by a heartbeat; an epoch from ``INCR`` at
  start.
- Routes: each node writes only its own set of filters and announces each change on a
  channel; every node keeps the others' sets in a trie (routes.py), loading a node's
  set in full when an announcement shows a gap, and all of them after a reconnect.
- Forwarding: a message is delivered here and sent once to each other node with a matching
  route, into that node's inbound stream, read in a consumer group and acknowledged after
  delivery, so a message in transit outlives a restart of the node it goes to.
- Acknowledgements: a QoS 1/2 PUBLISH (and a SUBSCRIBE) is answered only once Redis has
  answered the writes of its turn, as the store's commit comes before them in one node.
- Retained messages live in a Redis hash; each node keeps a copy, updated from the events
  that the writes publish, in Redis's order.
- Client ids: claims.py.

Every Redis round trip of a loop turn leaves in one write per connection. Three connections:
commands, the channel subscription, and the blocking read of this node's stream.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Container
from functools import partial
from typing import Any

import msgpack  # type: ignore[import-untyped]  # ships no type information

from mqlite.protocol import ReasonCode

from ..engine.connection import NO_OUTPUT, Connection
from ..engine.routing import route, route_only
from ..engine.services import ClusterHost, RouteResult
from ..engine.session import PROGRESS_WINDOW, Session
from ..message import Message
from ..net.loop_driven import SocketIO
from . import scripts as keys
from .acks import StreamAcks
from .claims import Claims
from .config import ClusterConfig
from .link import LOST, READY, RedisLink, Reply, failed
from .routes import RouteTable
from .sessions import NodeSessions
from .stats import ClusterStats
from .store import RedisStore
from .wire import (
    Forwarded,
    Taken,
    Takeover,
    pack_forward,
    pack_retained,
    unpack_entry,
    unpack_retained,
)

log = logging.getLogger("mqlite.cluster")

_READ_COUNT = 256  # stream entries per read
_READ_BLOCK_MS = 2000  # a read waits this long for an entry, then is sent again
_SEEN_LIMIT = 100_000  # forwarded message ids remembered, to drop one that comes twice
_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 5.0
_OPS_PER_SCRIPT = 1000
_ADOPTION_RECHECK = 0.25  # seconds between looks at another node's adoption of this id
_NODE_SYS = "$SYS/broker/node/"  # each node's own $SYS tree, seen on every node


class _Except:
    """Every shared subscription but those another node serves."""

    __slots__ = ("served_elsewhere",)

    def __init__(self, served_elsewhere: set[str]) -> None:
        self.served_elsewhere = served_elsewhere

    def __contains__(self, share: object) -> bool:
        return share not in self.served_elsewhere


class _NotIn:
    """Every client id but these."""

    __slots__ = ("excluded",)

    def __init__(self, excluded: set[str]) -> None:
        self.excluded = excluded

    def __contains__(self, client_id: object) -> bool:
        return client_id not in self.excluded


class ClusterNode:
    def __init__(self, core: ClusterHost, io: SocketIO, config: ClusterConfig,
                 on_fenced: Callable[[], None], store: RedisStore | None = None,
                 acks: StreamAcks | None = None) -> None:
        """``store``: where the persistent sessions are (None: they stay on their node)."""
        self.core = core
        self.io = io
        self.config = config
        self.node = config.node_id
        self.address = config.address
        self.on_fenced = on_fenced
        self.epoch = 0
        # True while every link is up and this node is registered, subscribed and loaded.
        self.available = False
        self.routes = RouteTable()
        self.stats = ClusterStats()
        self.claims = Claims(self)
        self.cmd: RedisLink | None = None
        self.sub: RedisLink | None = None
        self.inbox: RedisLink | None = None
        self._registered = False  # this connection's route reset is queued
        self._took_id = False  # this process has registered its node id once
        self._waiting_logged = False
        self._subscribed = 0  # channel subscriptions confirmed
        self._route_ops: list[str] = []  # this turn's changes of this node's filters
        # Stream entries handled this turn (shared with the store, which acknowledges them
        # with the session writes they caused).
        self.acks = acks if acks is not None else StreamAcks()
        self.acks.stream = keys.inbox_key(self.node)
        # Connections whose answers wait for this turn's writes: (conn, session, the
        # inbound QoS 2 id to forget if they fail).
        self._holds: list[tuple[Connection, Session | None, int | None]] = []
        # Forwarded message ids delivered here, with when (monotonic).
        self.seen: OrderedDict[str, float] = OrderedDict()
        self._sent = 0
        self._share_turns: dict[str, int] = {}
        self._retained_version = 0
        # While unacknowledged entries are read again (after a start or reconnect): the last
        # one read; None once they are done and new ones are read.
        self._last_read: bytes | None = b"0"
        # Entries read but not yet delivered (flow control holds them back).
        self._unapplied: deque[tuple[bytes, list[bytes] | None]] = deque()
        self._backoff = _BACKOFF_FIRST
        self._outage_since: float | None = None
        self._stopping = False
        self._beats = 0  # heartbeat timer chains started (only the last one runs)
        # The live nodes (their membership keys), with what each says of itself, as read at
        # the last heartbeat.
        self.members: dict[str, dict[str, Any]] = {}
        self._recovered = 0  # the epoch whose sessions were recovered
        core.index.watch_routes(self._route_changed)
        self.sessions = NodeSessions(self, store) if store is not None else None

    # -- start, stop, outages --------------------------------------------------------------

    def start(self) -> None:
        log.info("cluster: node %s connecting to Redis at %s", self.node, self.address)
        self._connect()

    def _connect(self) -> None:
        if self._stopping:
            return
        try:
            self.cmd = RedisLink(self.io, self.address, "commands", self._link_ready,
                                 self._link_lost)
            self.sub = RedisLink(self.io, self.address, "events", self._link_ready,
                                 self._link_lost, on_push=self._event)
            self.inbox = RedisLink(self.io, self.address, "inbox", self._link_ready,
                                   self._link_lost)
        except OSError as exc:
            self._link_lost(None, f"cannot connect to {self.address}: {exc.strerror or exc}")

    def stop(self) -> None:
        """A clean stop (after the broker's last commit): this node's membership key goes,
        so a surviving node adopts its persistent sessions (they are in Redis) at its next
        heartbeat, and what was on its way to this node is delivered from its stream."""
        self._stopping = True
        cmd = self.cmd
        if cmd is not None and cmd.state == READY and self._registered:
            cmd.command("DEL", keys.node_key(self.node))
            cmd.flush()
        for link in (self.cmd, self.sub, self.inbox):
            if link is not None:
                link.close()
        self.available = False

    def _link_ready(self, link: RedisLink) -> None:
        if link is self.sub:
            link.push_command("SUBSCRIBE", keys.ROUTE_EVENTS, keys.RETAINED_EVENTS)
        self._maybe_join()

    def _maybe_join(self) -> None:
        links = (self.cmd, self.sub, self.inbox)
        if self._registered or any(link is None or link.state != READY for link in links):
            return
        if self._subscribed < 2:
            return  # subscribed first: no event may fall between a load and the channel
        cmd = self.cmd
        assert cmd is not None
        for script in keys.ALL:
            cmd.command("SCRIPT", "LOAD", script.source)
        if self.sessions is not None and not self._took_id:
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
                            "process with node id %s; joining once it is done", self.node)
            self.core.timers.call_at(time.monotonic() + _ADOPTION_RECHECK,
                                     self._check_adoption)
            return
        self._take_epoch()

    def _check_adoption(self) -> None:
        cmd = self.cmd
        if cmd is not None and cmd.state == READY and not self._registered:
            cmd.command("EXISTS", keys.adopt_key(self.node), reply=self._adoption_checked)

    def _take_epoch(self) -> None:
        cmd = self.cmd
        assert cmd is not None
        if self.epoch:
            self._register()
        else:
            cmd.command("INCR", keys.EPOCH, reply=self._got_epoch)

    def _got_epoch(self, reply: Reply) -> None:
        if failed(reply):
            return  # the link is lost: a reconnect starts over
        self.epoch = int(reply)
        self._register()

    def _register(self) -> None:
        cmd = self.cmd
        assert cmd is not None
        self._registered = self.acks.readable = True
        if not self._took_id:  # the first registration takes the node id (from a killed
            self._took_id = True  # predecessor whose key has not expired, say)
            cmd.command("SET", keys.node_key(self.node), self._member_value(),
                        "PX", self._ttl_ms())
            # An adoption of an earlier process with this id concerns that one only.
            cmd.command("DEL", keys.adopted_key(self.node))
        else:
            self._heartbeat()
        cmd.command("SADD", keys.MEMBERS, self.node)
        self._route_ops.clear()  # the whole set replaces them
        cmd.command("EVALSHA", keys.ROUTES_CHANGE.sha, 2, keys.routes_key(self.node),
                    keys.routes_version_key(self.node), self.node, repr(time.time()), "=",
                    *self.core.index.routes())
        cmd.command("XGROUP", "CREATE", keys.inbox_key(self.node), keys.GROUP, "0",
                    "MKSTREAM", reply=self._group_ready)
        cmd.command("SMEMBERS", keys.MEMBERS, reply=self._load_routes)
        cmd.command("EVALSHA", keys.RETAINED_LOAD.sha, 2, keys.RETAINED,
                    keys.RETAINED_VERSION, reply=self._load_retained)

    def _load_routes(self, reply: Reply) -> None:
        if failed(reply):
            return
        cmd = self.cmd
        assert cmd is not None
        for raw in reply:
            node = raw.decode()
            if node != self.node:
                self._load_node(node)
        cmd.after_replies(self._joined)

    def _joined(self, ok: bool) -> None:
        if not ok:
            return
        if self.sessions is not None and self._recovered != self.epoch:
            if not self.sessions.recover():
                self._link_lost(None, "reading this node's sessions failed")
                return
            self._recovered = self.epoch
        self.available = True
        self._backoff = _BACKOFF_FIRST
        if self._outage_since is not None:
            log.warning("cluster: Redis at %s is back after %.1f s; node %s rejoined",
                        self.address, time.monotonic() - self._outage_since, self.node)
        log.info("cluster: node %s joined (epoch %d, %d other node(s), %d route(s), "
                 "%d retained)", self.node, self.epoch, len(self.routes.by_node),
                 len(self.routes), len(self.core.retained.topics()))
        self._outage_since = None
        self._beats += 1  # a timer chain from before an outage ends at its next turn
        self.core.timers.call_at(time.monotonic() + self.config.node_ttl / 5, self._beat,
                                 self._beats)

    def _link_lost(self, link: RedisLink | None, reason: str) -> None:
        if self._stopping or (link is not None and link not in (self.cmd, self.sub,
                                                                self.inbox)):
            return
        if self._outage_since is None or self.available:
            log.warning("cluster: lost Redis at %s (%s link: %s); refusing new connections "
                        "and remote QoS 1/2 until it is back", self.address,
                        link.name if link is not None else "every", reason)
            self.stats.outages += 1
        self.available = False
        self._outage_since = self._outage_since or time.monotonic()
        self._registered = self.acks.readable = False
        self._subscribed = 0
        links = (self.cmd, self.sub, self.inbox)
        self.cmd = self.sub = self.inbox = None
        for other in links:
            if other is not None and other is not link:
                other.close()  # its unanswered commands fail
        self._route_ops.clear()
        self.acks.entries.clear()  # unacknowledged entries are read again from the stream
        self._last_read = b"0"
        self._unapplied.clear()  # still unacknowledged: read again from the stream
        holds, self._holds = self._holds, []
        self._release(holds, False)
        self.claims.outage()
        delay = self._backoff * random.uniform(0.5, 1.5)
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
        self.core.timers.call_at(time.monotonic() + delay, self._connect)

    def _beat(self, chain: int) -> None:
        if not self.available or chain != self._beats:
            return  # a timer from before an outage
        self._heartbeat()
        assert self.cmd is not None
        self.cmd.command("SMEMBERS", keys.MEMBERS, reply=self._members_listed)
        self.core.timers.call_at(time.monotonic() + self.config.node_ttl / 5, self._beat,
                                 chain)

    def _heartbeat(self) -> None:
        assert self.cmd is not None
        self.cmd.command("EVALSHA", keys.HEARTBEAT.sha, 2, keys.node_key(self.node),
                         keys.adopted_key(self.node), f"{self.epoch}|", self._member_value(),
                         self._ttl_ms(), reply=self._beaten)

    def _beaten(self, reply: Reply) -> None:
        if reply == 2:
            self._rejoin_adopted()
        elif reply == 0:
            log.error("cluster: node id %s was registered by another process (a newer "
                      "epoch); stopping this one", self.node)
            self._stopping = True
            self.available = False
            self.on_fenced()

    def _rejoin_adopted(self) -> None:
        """This node's key expired (it was paused, or cut off, past its TTL) and another node
        adopted its sessions: they are that node's now. Its clients are closed, and it joins
        again under a new epoch."""
        log.error("cluster: node %s was taken for dead and its sessions adopted; closing "
                  "its clients and joining again under a new epoch", self.node)
        if self.sessions is not None:
            self.sessions.forget_all("this node was taken for dead; its sessions moved")
        self.epoch = 0
        self._took_id = False
        self._link_lost(None, "this node was adopted by another")

    def sessions_fenced(self, client_ids: list[str]) -> None:
        """The store refused writes to these sessions: another node owns them now."""
        if self.sessions is not None:
            self.sessions.fenced(client_ids)

    def _members_listed(self, reply: Reply) -> None:
        if failed(reply) or not reply or self.cmd is None:
            return
        nodes = [raw.decode() for raw in reply]
        self.cmd.command("MGET", *map(keys.node_key, nodes),
                         reply=partial(self._members_read, nodes))

    def _members_read(self, nodes: list[str], reply: Reply) -> None:
        """The nodes whose membership keys live, with what each says of itself."""
        if failed(reply):
            return
        members = {}
        for node, value in zip(nodes, reply, strict=True):
            if value is None:
                if self.sessions is not None and node != self.node:
                    self.sessions.node_gone(node)  # listed, but its key expired
                continue
            try:
                members[node] = msgpack.unpackb(bytes.fromhex(value.split(b"|", 1)[1].decode()))
            except (ValueError, IndexError, msgpack.UnpackException):
                continue
        self.members = members

    @property
    def node_id(self) -> str:
        return self.node

    def sys_values(self) -> dict[str, str]:
        members = dict(self.members)
        members[self.node] = {"clients": self.core.stats.clients_connected}
        return {"cluster/nodes": str(len(members)),
                "cluster/clients/connected": str(sum(int(info.get("clients", 0))
                                                     for info in members.values()))}

    def _member_value(self) -> str:
        """"epoch|" and what the other nodes may show of this one."""
        started = time.time() - (time.monotonic() - self.core.started)
        info = bytes(msgpack.packb({"clients": self.core.stats.clients_connected,
                                    "started": started}))
        return f"{self.epoch}|{info.hex()}"

    def _ttl_ms(self) -> int:
        return max(1, int(self.config.node_ttl * 1000))

    # -- the end of a loop turn ------------------------------------------------------------

    def flush(self) -> None:
        """After the turn's commit: this turn's route changes and stream acknowledgements,
        then every link's queued commands in one write each. Connections held this turn
        are answered once Redis has answered all of it."""
        cmd = self.cmd
        if cmd is not None and cmd.state == READY and self._registered:
            self.flush_routes()
            taken = self.acks.take()
            if taken is not None:
                inbox, acks = taken
                cmd.command("XACK", inbox, keys.GROUP, *acks)
                cmd.command("XDEL", inbox, *acks)
            if self._holds:
                holds, self._holds = self._holds, []
                replicas = self.config.wait_replicas
                if replicas:  # and the forwards reached that many replicas
                    confirmed: list[bool] = []
                    cmd.command("WAIT", replicas, int(self.config.wait_timeout * 1000),
                                reply=partial(self._waited, confirmed, replicas))
                    cmd.after_replies(lambda ok: self._release(holds, ok and all(confirmed)))
                else:
                    cmd.after_replies(partial(self._release, holds))
        for link in (cmd, self.sub, self.inbox):
            if link is not None:
                link.flush()

    def flush_routes(self) -> None:
        """This turn's changes of this node's filters, queued now."""
        cmd = self.cmd
        if cmd is None or cmd.state != READY or not self._registered or not self._route_ops:
            return
        ops, self._route_ops = self._route_ops, []
        for start in range(0, len(ops), _OPS_PER_SCRIPT):
            cmd.command("EVALSHA", keys.ROUTES_CHANGE.sha, 2, keys.routes_key(self.node),
                        keys.routes_version_key(self.node), self.node, repr(time.time()),
                        *ops[start:start + _OPS_PER_SCRIPT])

    def add_routes(self, filters: list[str]) -> None:
        """Filters into this node's route set ahead of the sessions that will have them."""
        if self._registered:
            self._route_ops.extend("+" + f for f in filters)

    def remove_routes(self, filters: list[str]) -> None:
        """Filters added ahead that no session here has after all."""
        if self._registered:
            index = self.core.index
            self._route_ops.extend("-" + f for f in filters if not index.has_route(f))

    def hold(self, conn: Connection, session: Session | None, qos2_id: int | None) -> None:
        """What ``conn`` was sent this turn (a PUBACK, a SUBACK) waits until Redis has
        answered the writes queued this turn (forwards, a retained message, routes)."""
        cmd = self.cmd
        if cmd is None or not self._registered or not (cmd.busy or self._route_ops):
            return
        conn.engine_holds += 1
        self._holds.append((conn, session, qos2_id))

    @staticmethod
    def _waited(confirmed: list[bool], replicas: int, reply: Reply) -> None:
        confirmed.append(not failed(reply) and int(reply) >= replicas)
        if not confirmed[-1] and not failed(reply):
            log.warning("cluster: only %s of %d Redis replica(s) confirmed a turn's "
                        "forwards; not acknowledged", reply, replicas)

    def _release(self, holds: list[tuple[Connection, Session | None, int | None]],
                 ok: bool) -> None:
        core = self.core
        for conn, session, qos2_id in holds:
            if ok:
                conn.engine_holds -= 1
                if not conn.engine_holds:
                    core.dirty.add(conn)
                continue
            # Unconfirmed: nothing of the turn may be acknowledged. The client sends again
            # what it was not told of; a QoS 2 id forgotten, so that its resend is routed.
            conn.engine_holds = 0
            conn.out = NO_OUTPUT
            conn.out_size = 0
            if qos2_id is not None and session is not None and \
                    qos2_id in session.inbound_qos2:
                session.inbound_qos2.discard(qos2_id)
                core.journal.inbound_qos2_released(session, qos2_id)
            if conn.open:
                conn.publish_will = False
                core.drop(conn, "Redis did not confirm the cluster's writes",
                          ReasonCode.UNSPECIFIED_ERROR)
            core.dirty.add(conn)

    # -- what operators see ----------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """For /api/v1/cluster, /metrics and the stats (JSON-ready)."""
        stats = self.stats
        return {
            "node_id": self.node, "epoch": self.epoch, "available": self.available,
            "members": sorted({*self.members, self.node}),
            "redis": str(self.address),
            "outage_seconds": 0.0 if self._outage_since is None
            else time.monotonic() - self._outage_since,
            # Other nodes known by their routes, and how many filters each has.
            "nodes": {node: len(filters) for node, filters in
                      sorted(self.routes.by_node.items()) if filters},
            "local_routes": len(self.core.index.routes()),
            "owned_client_ids": len(self.claims.owned),
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

    # -- routes ----------------------------------------------------------------------------

    def _route_changed(self, topic_filter: str, added: bool) -> None:
        if self._registered:  # else the whole set is written when this node registers
            self._route_ops.append(("+" if added else "-") + topic_filter)

    def _load_node(self, node: str) -> None:
        cmd = self.cmd
        if cmd is None or cmd.state != READY:
            return
        cmd.command("EVALSHA", keys.ROUTES_LOAD.sha, 2, keys.routes_key(node),
                    keys.routes_version_key(node), reply=partial(self._node_loaded, node))

    def _node_loaded(self, node: str, reply: Reply) -> None:
        if failed(reply):
            return
        version, filters = reply
        self.routes.replace(node, {f.decode() for f in filters}, int(version))
        self.stats.route_loads += 1

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
            self._route_event(event)
        else:
            self._retained_event(event)

    def _route_event(self, event: list[Any]) -> None:
        node_raw, version, sent_at, ops = event
        node = node_raw.decode()
        if node == self.node:
            return
        if isinstance(ops, list) and self.routes.apply(
                node, int(version), [op.decode() for op in ops]):
            self.stats.route_delay.observe(max(0.0, time.time() - float(sent_at)))
            return
        self._load_node(node)  # a new node, its reset, or a missed event

    # -- retained messages -----------------------------------------------------------------

    def _retain(self, message: Message, now: float) -> None:
        assert self.cmd is not None
        packed = pack_retained(message, now) if message.payload else b""
        self.cmd.command("EVALSHA", keys.RETAIN.sha, 2, keys.RETAINED, keys.RETAINED_VERSION,
                         message.topic, packed)

    def _load_retained(self, reply: Reply) -> None:
        if failed(reply):
            return
        version, flat = reply
        now = time.monotonic()
        retained = self.core.retained
        for topic in list(retained.topics()):
            retained.delete(topic)
        for index in range(0, len(flat), 2):
            self._set_retained(flat[index].decode(), flat[index + 1], now)
        self._retained_version = int(version)

    def _retained_event(self, event: list[Any]) -> None:
        version, topic, packed = int(event[0]), event[1].decode(), event[2]
        if version <= self._retained_version:
            return
        if version != self._retained_version + 1:
            cmd = self.cmd
            if cmd is not None and cmd.state == READY:
                cmd.command("EVALSHA", keys.RETAINED_LOAD.sha, 2, keys.RETAINED,
                            keys.RETAINED_VERSION, reply=self._load_retained)
            return
        self._retained_version = version
        if packed:
            self._set_retained(topic, packed, time.monotonic())
        else:
            self.core.retained.delete(topic)

    def _set_retained(self, topic: str, packed: bytes, now: float) -> None:
        try:
            self.core.retained.set(unpack_retained(packed, now))
        except ValueError as exc:
            log.warning("cluster: retained message on %r skipped: %s", topic, exc)

    # -- publishing ------------------------------------------------------------------------

    def needs_remote(self, topic: str, retain: bool) -> bool:
        """Whether a message to ``topic`` needs Redis: another node routes it, or it is to be
        retained (the retained messages live there)."""
        return (retain and not topic.startswith("$")) or bool(self.routes.match(topic))

    def publish(self, message: Message, now: float) -> RouteResult:
        """Deliver here, and forward once to each other node with a matching route; a shared
        subscription's member is picked among all nodes that have one (round robin)."""
        topic = message.topic
        if topic.startswith("$") and not topic.startswith(_NODE_SYS):
            return route(self.core, message, now)  # $SYS/broker/... is each node's own
        if message.retain and self.available and topic[:1] != "$":
            self._retain(message, now)
        targets = self.routes.match(topic)
        if not targets:
            if self.sessions is None or not self.sessions.moved or not self.available:
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
                candidates = [*nodes, self.node] if index.has_route(share) else nodes
                turn = self._share_turns.get(share, 0)
                self._share_turns[share] = turn + 1
                pick = candidates[turn % len(candidates)]
                if pick != self.node:
                    elsewhere.add(share)
                    remote.setdefault(pick, []).append(share)
            shares = _Except(elsewhere)
        matched, congested = route(self.core, message, now, shares)
        if not self.available:
            self.stats.forwards_dropped += len(remote)
            return RouteResult(matched, congested)
        self._forward(message_id, message, remote, now)
        sessions = self.sessions
        if sessions is not None and sessions.busy:
            # Delivered here now: a copy that comes back for a moved or adopted session is
            # not delivered again (see sessions.py).
            self.seen[message_id] = time.monotonic()  # not the turn's: see _apply_entry
            if sessions.moved:
                sessions.pass_on(message, message_id, now)
        return RouteResult(matched + len(remote), congested)

    def _message_id(self, message: Message) -> str:
        self._sent += 1
        message_id = message.cluster_id = f"{self.node}|{self.epoch}|{self._sent}"
        return message_id

    def _forward(self, message_id: str, message: Message, remote: dict[str, list[str]],
                 now: float) -> None:
        cmd = self.cmd
        assert cmd is not None
        maxlen = self.config.stream_maxlen
        for node, shares in remote.items():
            cmd.command("XADD", keys.inbox_key(node), "MAXLEN", "~", maxlen, "*", "m",
                        pack_forward(message_id, message, shares, now))
        self.stats.forwarded += len(remote)

    # -- this node's stream ----------------------------------------------------------------

    def _group_ready(self, reply: Reply) -> None:
        if reply is LOST:
            return
        if failed(reply) and not str(reply).startswith("BUSYGROUP"):
            log.error("cluster: cannot create the consumer group of %s: %s",
                      keys.inbox_key(self.node), reply)
            return
        self._read_inbox()

    def _read_inbox(self) -> None:
        inbox = self.inbox
        if inbox is None or inbox.state != READY:
            return
        start = self._last_read if self._last_read is not None else b">"
        inbox.command("XREADGROUP", "GROUP", keys.GROUP, self.node, "COUNT", _READ_COUNT,
                      "BLOCK", _READ_BLOCK_MS, "STREAMS", keys.inbox_key(self.node), start,
                      reply=self._inbox_read)

    def _inbox_read(self, reply: Reply) -> None:
        if reply is LOST:
            return
        if failed(reply):
            log.error("cluster: reading %s failed: %s", keys.inbox_key(self.node), reply)
            self._link_lost(self.inbox, str(reply))
            return
        entries = reply[0][1] if reply else []
        if self._last_read is not None:
            if not entries:
                self._last_read = None  # every unacknowledged entry read again: new ones now
            else:
                self._last_read = entries[-1][0]
        self._unapplied.extend(entries)
        self._apply_read()

    def _apply_read(self) -> None:
        """Deliver what was read, in order, then read on; stop while a live subscriber's
        queue is filling (flow control, as a single broker stops reading a publisher): the
        rest stays unacknowledged meanwhile, in the stream and here."""
        unapplied = self._unapplied
        now = time.monotonic()
        while unapplied:
            entry_id, fields = unapplied.popleft()
            self.acks.entries.append(entry_id)
            congested = self._apply_entry(fields[1], now) if fields else None
            if congested is not None:
                self.stats.inbox_pauses += 1
                self.core.timers.call_at(now + PROGRESS_WINDOW / 5, self._check_drained,
                                         congested, self.inbox)
                return
        self._read_inbox()

    def _check_drained(self, session: Session, inbox: RedisLink | None) -> None:
        if inbox is not self.inbox:
            return  # reconnected meanwhile: reading started again
        now = time.monotonic()
        if session.connection is not None and not session.stalled and \
                session.queued > self.core.config.max_memory_queued_messages // 4:
            if now - session.progress_at <= PROGRESS_WINDOW:
                self.core.timers.call_at(now + PROGRESS_WINDOW / 5, self._check_drained,
                                         session, inbox)
                return
            session.stalled = True  # not draining: it throttles no one, its queue takes it
        self._apply_read()

    def _apply_entry(self, data: bytes, now: float) -> Session | None:
        """Deliver or act on one stream entry; the session it congested, if one."""
        try:
            entry = unpack_entry(data, now)
        except ValueError as exc:
            log.warning("cluster: stream entry skipped: %s", exc)
            return None
        if isinstance(entry, Forwarded):
            if entry.only is not None:
                if self.sessions is not None:
                    self.sessions.deliver_only(entry, now)
                return None
            seen = self.seen
            if entry.message_id in seen:
                self.stats.duplicates += 1
                return None
            # The clock now, not the batch's: a session that arrived earlier in this batch
            # (a take-over's answer) got this one here (see sessions.py).
            seen[entry.message_id] = time.monotonic()
            if len(seen) > _SEEN_LIMIT:
                seen.popitem(last=False)
            self.stats.received += 1
            message = entry.message
            if message.retain and message.topic.startswith(_NODE_SYS):
                self.core.retained.set(message)  # another node's $SYS, for late subscribers
            sessions = self.sessions
            if sessions is not None and sessions.only_delivered:
                delivered = sessions.only_delivered.get(entry.message_id)
                if delivered is not None:  # some sessions had it already (a move's overlap)
                    route_only(self.core, message, now, _NotIn(delivered))
                    return None
            congested = route(self.core, message, now, frozenset(entry.shares)).congested
            if sessions is not None and sessions.moved:
                sessions.pass_on(message, entry.message_id, now)
            return congested
        if isinstance(entry, Takeover):
            self.claims.takeover(entry)
        elif isinstance(entry, Taken):
            self.claims.taken(entry)
        return None

    def send_entry(self, node: str, data: bytes) -> None:
        """A control entry into ``node``'s stream (a take-over and its answer)."""
        if self.cmd is not None and self.cmd.state == READY:
            self.cmd.command("XADD", keys.inbox_key(node), "MAXLEN", "~",
                             self.config.stream_maxlen, "*", "m", data)
