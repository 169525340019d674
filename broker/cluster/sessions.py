"""Persistent sessions across nodes (cluster mode): they live in Redis (store.py) and in
the memory of the node that owns them, and they move.

- **Recovery**: a node (re)started under its id takes back the sessions that id owned, and
  passes on what its stream holds for those that clients resumed elsewhere meanwhile.
- **Resumption elsewhere**: a CONNECT whose session another node owned takes it from Redis
  before CONNACK (after that node let it go, or went away); its routes join this node's set,
  and the CONNACK waits for them to be in Redis.
- **Letting go**: the node a session leaves keeps, for a grace period, what the session
  subscribed to and where it went, and passes on the messages that still come to it for the
  session (sent by nodes whose routes did not show the move yet), so a move leaves no gap.
- **Adoption**: when a node's membership key expires, one survivor wins ``SET mq:adopt:{n}
  NX PX``, takes the dead node's sessions with its own epoch (their routes become its own),
  claims their client ids, publishes the wills of clients that were connected there, deletes
  the dead node's routes, and delivers what waits in the dead node's stream (its pending
  entries with ``XAUTOCLAIM``, its unread ones with ``XREADGROUP``) to the adopted sessions
  and to those that clients resumed before the adoption (here, or passed on to their node),
  for a grace period, then deletes the stream.
- **Fencing**: every session write checks the owner (store.py); a node whose writes are
  refused forgets those sessions, and a node that finds it was adopted (it was paused past
  its TTL) closes its clients and joins again under a new epoch.

A message delivered from the dead node's stream, or passed on by a node a session left, goes
to that session only, and not if this node already had it since the session arrived (from its
own stream, or from a publisher here: the nodes' routes overlapped meanwhile). So for a while
after a session arrives (``arrival_horizon``) this node notes when it delivered each message
that it also forwarded.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from functools import partial
from typing import Any, NamedTuple

from mqlite.protocol import TopicTrie, parse_shared_subscription

from ..engine.routing import route_only
from ..engine.session import Session
from ..engine.store import StoredState, StoreWriteError
from ..engine.timers import TimerHeap
from ..message import Message
from . import scripts as keys
from .context import NodeContext
from .link import Reply, failed
from .route_sync import RouteSync
from .store import RedisStore
from .wire import Forwarded, pack_forward_only, unpack_entry

log = logging.getLogger("mqlite.cluster")

# Seconds a node passes on the messages of a session that left it (its own stream may hold
# some for a while), and at least drains the stream of a node it adopted (routes reach every
# node in milliseconds): a process taking the adopted node's id back waits for the drain.
GRACE = 10.0
DRAIN_GRACE = 2.0
_ADOPT_LOCK_MS = 30_000
_DRAIN_COUNT = 500
_DRAIN_EVERY = 0.2
_ONLY_SEEN_LIMIT = 100_000


class _Drained(NamedTuple):
    """Whose messages a dead node's stream holds: the sessions here (adopted now, or resumed
    here before the adoption), and those resumed on other nodes before the adoption."""

    here: frozenset[str]
    elsewhere: frozenset[str]


class _Moved(NamedTuple):
    node: str
    filters: tuple[str, ...]  # as matched (a shared subscription's inner filter)
    left_at: float


class MovedSessions:
    """Sessions that left this node within the grace period: where each went, and its
    filters in a trie, so that a message is matched against them in one walk however many
    moved (a rolling restart moves them all)."""

    def __init__(self, timers: TimerHeap) -> None:
        self._timers = timers
        self.by_id: dict[str, _Moved] = {}
        self._trie: TopicTrie[str, None] = TopicTrie()

    def __bool__(self) -> bool:
        return bool(self.by_id)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self.by_id

    def get(self, client_id: str) -> _Moved | None:
        return self.by_id.get(client_id)

    def add(self, client_id: str, node: str, filters: Iterable[str], now: float) -> None:
        self.discard(client_id)
        inner = tuple({_inner(f) for f in filters})
        if not inner:
            return
        moved = self.by_id[client_id] = _Moved(node, inner, now)
        for topic_filter in inner:
            self._trie.add(topic_filter, client_id, None)
        self._timers.call_at(now + GRACE, self._expire, client_id, moved)

    def discard(self, client_id: str) -> None:
        moved = self.by_id.pop(client_id, None)
        if moved is not None:
            for topic_filter in moved.filters:
                self._trie.remove(topic_filter, client_id)

    def clear(self) -> None:
        for client_id in list(self.by_id):
            self.discard(client_id)

    def matching(self, topic: str) -> set[str]:
        return {client_id for entries in self._trie.match(topic) for client_id in entries}

    def _expire(self, client_id: str, moved: _Moved) -> None:
        if self.by_id.get(client_id) is moved:
            self.discard(client_id)


class NodeSessions:
    def __init__(self, ctx: NodeContext, store: RedisStore, routes: RouteSync) -> None:
        self.ctx = ctx
        self.store = store
        self.routes = routes
        self.moved = MovedSessions(ctx.core.timers)
        self.arrived: dict[str, float] = {}  # client id -> when its session came here
        # Message ids delivered to some sessions only, and to which: this node's stream may
        # bring the same message for them again (routes overlap during a move), and then
        # they do not get it twice.
        self.only_delivered: OrderedDict[str, set[str]] = OrderedDict()
        self._adopting: set[str] = set()
        # Filters put in this node's route set for sessions it is taking over (client id ->
        # filters), until they are here or the take-over failed.
        self._announced: dict[str, list[str]] = {}
        self.adopted_total = 0
        self.fenced_total = 0
        # Until then, copies of messages for sessions that arrived here may still come from
        # the nodes they left (see arrival_horizon).
        self._arrivals_until = 0.0

    # -- this node's own, at (re)start ------------------------------------------------------

    def recover(self) -> bool:
        """Take back the sessions this node id owned (with the new epoch); False if Redis
        failed (the join starts over)."""
        core = self.ctx.core
        elsewhere: dict[str, tuple[str, list[str]]] = {}
        try:
            state = self.store.recover(self.ctx.epoch, elsewhere, self.ctx.node)
        except StoreWriteError as exc:
            log.error("cluster: cannot read this node's sessions: %s", exc)
            return False
        self._holding(state)
        core.sessions.restore(state, core.retained, quiet=True)
        if state.sessions:
            log.info("cluster: node %s recovered %d session(s)", self.ctx.node,
                     len(state.sessions))
        # Resumed on another node while this id was down: what this node's stream still
        # holds for them (routed here before the move) is passed on to that node.
        now = self.ctx.core.clock.monotonic()
        for client_id, (owner, filters) in elsewhere.items():
            if owner != self.ctx.node:
                self.moved.add(client_id, owner, filters, now)
        if elsewhere:
            log.info("cluster: node %s passes on what its stream holds for %d session(s) "
                     "resumed elsewhere", self.ctx.node, len(elsewhere))
        return True

    @property
    def arrival_horizon(self) -> float:
        """How long copies of a message may come for a session after it arrived: from the
        node it left, for that node's grace period; from a dead node's stream, once the node
        is adopted (its TTL and a heartbeat) and drained, maybe passed on by its adopter."""
        return 2 * (1.2 * self.ctx.config.node_ttl + DRAIN_GRACE + GRACE)

    # -- a client resumes here a session another node had ------------------------------------

    def take(self, client_id: str) -> bool:
        """Before CONNACK: the client id's stored session, if another node had it, is now
        this node's (in memory, its routes in this node's set). False if Redis failed."""
        core = self.ctx.core
        if client_id in core.sessions:
            return True
        try:
            state = self.store.take(client_id)
        except StoreWriteError as exc:
            log.warning("cluster: cannot take session %s: %s", client_id, exc)
            return False
        self.moved.discard(client_id)
        now = self.ctx.core.clock.monotonic()
        self._prune(now)
        if state is not None:
            self.arrived[client_id] = now
            self._arrivals_until = now + self.arrival_horizon
            self._holding(state)
            core.sessions.restore(state, core.retained, quiet=True)
        return True

    def _holding(self, state: StoredState) -> None:
        """What sessions moving here already hold: a copy of one of those messages that
        comes for them again (the routes' overlap during the move) is not delivered."""
        for client_id, deliveries in state.deliveries.items():
            for delivery in deliveries.values():
                message_id = delivery.message.cluster_id
                if message_id is not None:
                    self._held(message_id, (client_id,))

    def _held(self, message_id: str, client_ids: Iterable[str]) -> None:
        """These sessions have that message now (only_delivered, bounded)."""
        held = self.only_delivered.get(message_id)
        if held is None:
            held = self.only_delivered[message_id] = set()
            while len(self.only_delivered) > _ONLY_SEEN_LIMIT:
                self.only_delivered.popitem(last=False)
        held.update(client_ids)

    def announce(self, client_id: str) -> None:
        """Before asking the node that has ``client_id``'s session to let it go: its filters
        join this node's route set first, so that a publisher's node sees this node's route
        before the other's goes (a take-over leaves an overlap, never a gap)."""
        try:
            filters = self.store.filters_of(client_id)
        except StoreWriteError as exc:
            log.warning("cluster: cannot read the subscriptions of %s: %s", client_id, exc)
            return
        if filters:
            self._announced[client_id] = filters
            self.routes.add(filters)
            self.routes.flush()  # queued before the take-over request

    def settle(self, client_id: str) -> None:
        """The take-over is over: the announced filters stay only where a session has them."""
        filters = self._announced.pop(client_id, None)
        if filters:
            self.routes.remove(filters)

    def let_go(self, session: Session, to_node: str, reason: str) -> None:
        """``session`` moved to ``to_node``: forgotten here (its copy is in Redis), what it
        subscribed to kept for the grace period."""
        now = self.ctx.core.clock.monotonic()
        self.moved.add(session.client_id, to_node, session.subscriptions, now)
        self._prune(now)
        self.ctx.core.sessions.forget(session, reason)

    def _prune(self, now: float) -> None:
        """Arrivals are needed while messages for the session may still be passed on or
        drained to it."""
        if len(self.arrived) > 1000:
            horizon = self.arrival_horizon
            for client_id, at in list(self.arrived.items()):
                if now - at > horizon:
                    del self.arrived[client_id]

    def pass_on(self, message: Message, message_id: str, now: float,
                among: frozenset[str] | None = None) -> int:
        """Send a message that came here to the sessions that left within the grace period
        (``among``: of those, these only), at their new nodes; how many it went to."""
        by_node: dict[str, list[str]] = {}
        for client_id in self.moved.matching(message.topic):
            if among is None or client_id in among:
                by_node.setdefault(self.moved.by_id[client_id].node, []).append(client_id)
        for node, client_ids in by_node.items():
            self.ctx.send_entry(node, pack_forward_only(message_id, message, client_ids,
                                                         now))
        return sum(map(len, by_node.values()))

    def deliver_only(self, entry: Forwarded, now: float) -> None:
        """A message for some sessions only (passed on, or from an adopted node's stream):
        to each that is here, had it not from this node's own stream since it came."""
        assert entry.only is not None
        message_id = entry.message_id
        seen_at = self.ctx.seen.get(message_id)
        delivered = self.only_delivered.get(message_id)
        wanted = []
        for client_id in entry.only:
            if delivered is not None and client_id in delivered:
                continue
            arrived = self.arrived.get(client_id)
            if seen_at is not None and arrived is not None and seen_at >= arrived:
                moved = self.moved.get(client_id)
                if moved is None or seen_at <= moved.left_at:
                    continue  # delivered here directly while the session was here
            wanted.append(client_id)
        if not wanted:
            return
        self._held(message_id, wanted)
        here = [c for c in wanted if c in self.ctx.core.sessions]
        if here:
            route_only(self.ctx.core, entry.message, now, frozenset(here))
        gone = frozenset(c for c in wanted if c in self.moved)
        if gone:  # moved on again meanwhile
            self.pass_on(entry.message, message_id, now, gone)

    # -- fencing ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Sessions moved away or arrived lately, or a dead node's stream drained: messages
        may come twice."""
        return bool(self.moved or self._adopting) or \
            self.ctx.core.clock.monotonic() < self._arrivals_until

    def fenced(self, client_ids: list[str]) -> None:
        """Redis refused writes to these sessions: another node owns them now."""
        core = self.ctx.core
        for client_id in client_ids:
            session = core.sessions.get(client_id)
            if session is not None:
                log.warning("cluster: session %s belongs to another node now; closing it "
                            "here", client_id)
                self.fenced_total += 1
                self.ctx.owned.pop(client_id, None)
                self.arrived.pop(client_id, None)
                core.sessions.forget(session, "session taken over by another node")

    def forget_all(self, reason: str) -> None:
        """This node was adopted while cut off: every session is another node's now."""
        core = self.ctx.core
        for session in list(core.sessions.by_id.values()):
            if session.client_id not in core.sessions.internal:
                core.sessions.forget(session, reason)
        self.ctx.owned.clear()
        self.moved.clear()
        self.arrived.clear()

    # -- adoption of a dead node's sessions ------------------------------------------------

    def node_gone(self, dead: str) -> None:
        """``dead`` is listed as a member but its key expired: try to adopt it."""
        cmd = self.ctx.cmd
        if cmd is None or dead in self._adopting or dead == self.ctx.node:
            return
        self._adopting.add(dead)
        cmd.command("SET", keys.adopt_key(dead), f"{self.ctx.node}|{self.ctx.epoch}", "NX",
                    "PX", _ADOPT_LOCK_MS, reply=partial(self._locked, dead))

    def _locked(self, dead: str, reply: Reply) -> None:
        if failed(reply) or reply is None:
            self._adopting.discard(dead)  # another node adopts it (or Redis failed)
            return
        ctx = self.ctx
        cmd = ctx.cmd
        if cmd is None or not ctx.available:
            self._adopting.discard(dead)
            return
        try:
            state, elsewhere = self.store.adopt(dead)
        except StoreWriteError as exc:
            log.error("cluster: adopting node %s failed: %s", dead, exc)
            self._done(dead)  # another node (or this one, later) tries again
            return
        now = self.ctx.core.clock.monotonic()
        # A paused node that comes back finds it was adopted (HEARTBEAT), and rejoins.
        cmd.command("SET", keys.adopted_key(dead), ctx.node, "PX", 86_400_000)
        claim = f"{ctx.node}|{ctx.epoch}|0"
        for client_id in state.sessions:
            cmd.command("EVALSHA", keys.ADOPT_CLAIM.sha, 1, keys.owner_key(client_id), claim,
                        dead, reply=partial(self._claim_adopted, client_id, claim))
            self.arrived[client_id] = now
        self._arrivals_until = now + self.arrival_horizon
        ctx.routes.replace(dead, set(), ctx.routes.versions.get(dead, 0))  # sent nothing more
        self._holding(state)
        ctx.core.sessions.restore(state, ctx.core.retained, quiet=True)  # wills go out
        # Resumed before this adoption: the dead node's stream holds what was routed to them
        # meanwhile; those here get it here, the others at their node.
        here = set(state.sessions)
        for client_id, (owner, filters) in elsewhere.items():
            if owner == ctx.node:
                here.add(client_id)
            else:
                self.moved.add(client_id, owner, filters, now)
        self.routes.flush()  # the adopted routes before the dead node's are removed
        cmd.command("EVALSHA", keys.ROUTES_CHANGE.sha, 2, keys.routes_key(dead),
                    keys.routes_version_key(dead), dead, repr(time.time()), "=")
        cmd.command("SREM", keys.MEMBERS, dead)
        self.adopted_total += len(state.sessions)
        log.warning("cluster: node %s is gone; node %s adopted its %d session(s) (%d more "
                    "were resumed before: what its stream holds for them follows)", dead,
                    ctx.node, len(state.sessions), len(elsewhere))
        self._drain(dead, _Drained(frozenset(here), frozenset(elsewhere) - here),
                    now + DRAIN_GRACE, b"0-0")

    def _claim_adopted(self, client_id: str, claim: str, reply: Reply) -> None:
        if reply == 1:  # else a client took its id elsewhere meanwhile (and its session)
            self.ctx.owned[client_id] = claim

    def _drain(self, dead: str, adopted: _Drained, until: float, cursor: bytes) -> None:
        """What waits in the dead node's stream, to the adopted sessions: its pending
        entries (XAUTOCLAIM), then its unread ones."""
        cmd = self.ctx.cmd
        if cmd is None or not self.ctx.available:
            self._adopting.discard(dead)  # unread entries stay: adopted again later
            return
        stream = keys.inbox_key(dead)
        if cursor != b"done":
            cmd.command("XAUTOCLAIM", stream, keys.GROUP, self.ctx.node, 0, cursor,
                        "COUNT", _DRAIN_COUNT,
                        reply=partial(self._claimed, dead, adopted, until))
            return
        cmd.command("XREADGROUP", "GROUP", keys.GROUP, self.ctx.node, "COUNT", _DRAIN_COUNT,
                    "STREAMS", stream, ">", reply=partial(self._read, dead, adopted, until))

    def _claimed(self, dead: str, adopted: _Drained, until: float, reply: Reply) -> None:
        if failed(reply):
            self._drain_failed(dead, reply)
            return
        cursor, entries = reply[0], reply[1]
        if entries:
            log.info("cluster: XAUTOCLAIM took %d pending entries of node %s", len(entries),
                     dead)
        self._apply(dead, adopted, entries)
        self._drain(dead, adopted, until, b"done" if cursor == b"0-0" else cursor)

    def _read(self, dead: str, adopted: _Drained, until: float, reply: Reply) -> None:
        if failed(reply):
            self._drain_failed(dead, reply)
            return
        entries = reply[0][1] if reply else []
        self._apply(dead, adopted, entries)
        now = self.ctx.core.clock.monotonic()
        if entries:
            self._drain(dead, adopted, until, b"done")
        elif now < until:
            self.ctx.core.timers.call_at(now + _DRAIN_EVERY, self._drain, dead, adopted,
                                          until, b"done")
        else:
            cmd = self.ctx.cmd
            if cmd is not None:
                cmd.command("DEL", stream := keys.inbox_key(dead))
                log.info("cluster: the stream of node %s is drained and deleted (%s)", dead,
                         stream)
            self._done(dead)

    def _drain_failed(self, dead: str, reply: Reply) -> None:
        if not str(reply).startswith("NOGROUP"):  # NOGROUP: no stream, nothing waited
            log.error("cluster: draining the stream of node %s failed: %s", dead, reply)
        self._done(dead)

    def _done(self, dead: str) -> None:
        """The adoption is over (or failed): the lock goes, so that a process taking the id
        back joins, or another node tries again."""
        self._adopting.discard(dead)
        cmd = self.ctx.cmd
        if cmd is not None:
            cmd.command("DEL", keys.adopt_key(dead))

    def _apply(self, dead: str, drained: _Drained, entries: list[Any]) -> None:
        if not entries:
            return
        now = self.ctx.core.clock.monotonic()
        ids = []
        for entry_id, fields in entries:
            ids.append(entry_id)
            if not fields:
                continue  # deleted meanwhile
            try:
                entry = unpack_entry(fields[1], now)
            except ValueError as exc:
                log.warning("cluster: entry of node %s skipped: %s", dead, exc)
                continue
            if isinstance(entry, Forwarded):
                only = entry.only if entry.only is not None else sorted(drained.here)
                self.deliver_only(
                    entry._replace(only=[c for c in only if c in drained.here]), now)
                if drained.elsewhere:
                    self.pass_on(entry.message, entry.message_id, now, drained.elsewhere)
        cmd = self.ctx.cmd
        if cmd is not None:
            stream = keys.inbox_key(dead)
            cmd.command("XACK", stream, keys.GROUP, *ids)
            cmd.command("XDEL", stream, *ids)


def _inner(topic_filter: str) -> str:
    """The filter a shared subscription matches with."""
    shared = parse_shared_subscription(topic_filter)
    return shared.topic_filter if shared else topic_filter
