"""This node's stream: what other nodes forward here (messages, and the claims' control
entries), read in a consumer group and acknowledged after delivery (acks.py), so that a
message in transit outlives a restart of this node. After a (re)join the unacknowledged
entries are read again first. Reading stops while a live subscriber's queue is filling (flow
control, as a single broker stops reading a publisher)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from ..engine.routing import route, route_only
from ..engine.session import PROGRESS_WINDOW, Session
from . import scripts as keys
from .acks import StreamAcks
from .claims import Claims
from .context import NODE_SYS, NodeContext
from .link import LOST, READY, RedisLink, Reply, failed
from .sessions import NodeSessions
from .wire import Forwarded, Taken, Takeover, unpack_entry

log = logging.getLogger("mqlite.cluster")

_READ_COUNT = 256  # stream entries per read
_READ_BLOCK_MS = 2000  # a read waits this long for an entry, then is sent again
_SEEN_LIMIT = 100_000  # forwarded message ids remembered, to drop one that comes twice


class _NotIn:
    """Every client id but these."""

    __slots__ = ("excluded",)

    def __init__(self, excluded: set[str]) -> None:
        self.excluded = excluded

    def __contains__(self, client_id: object) -> bool:
        return client_id not in self.excluded


class InboxReader:
    def __init__(self, ctx: NodeContext, acks: StreamAcks, sessions: NodeSessions | None,
                 claims: Claims, on_failed: Callable[[RedisLink | None, str], None]) -> None:
        """``on_failed``: reading failed (the links start over)."""
        self.ctx = ctx
        self._acks = acks
        self._sessions = sessions
        self._claims = claims
        self._on_failed = on_failed
        # While unacknowledged entries are read again (after a start or reconnect): the last
        # one read; None once they are done and new ones are read.
        self._last_read: bytes | None = b"0"
        # Entries read but not yet delivered (flow control holds them back).
        self._unapplied: deque[tuple[bytes, list[bytes] | None]] = deque()

    def start(self, cmd: RedisLink) -> None:
        """The consumer group (made once), then reading."""
        cmd.command("XGROUP", "CREATE", keys.inbox_key(self.ctx.node), keys.GROUP, "0",
                    "MKSTREAM", reply=self._group_ready)

    def reset(self) -> None:
        """The links are lost: what was read and not acknowledged is read again."""
        self._acks.entries.clear()
        self._last_read = b"0"
        self._unapplied.clear()

    def _group_ready(self, reply: Reply) -> None:
        if reply is LOST:
            return
        if failed(reply) and not str(reply).startswith("BUSYGROUP"):
            log.error("cluster: cannot create the consumer group of %s: %s",
                      keys.inbox_key(self.ctx.node), reply)
            return
        self._read()

    def _read(self) -> None:
        inbox = self.ctx.inbox
        if inbox is None or inbox.state != READY:
            return
        start = self._last_read if self._last_read is not None else b">"
        node = self.ctx.node
        inbox.command("XREADGROUP", "GROUP", keys.GROUP, node, "COUNT", _READ_COUNT,
                      "BLOCK", _READ_BLOCK_MS, "STREAMS", keys.inbox_key(node), start,
                      reply=self._got)

    def _got(self, reply: Reply) -> None:
        if reply is LOST:
            return
        if failed(reply):
            log.error("cluster: reading %s failed: %s", keys.inbox_key(self.ctx.node), reply)
            self._on_failed(self.ctx.inbox, str(reply))
            return
        entries = reply[0][1] if reply else []
        if self._last_read is not None:
            if not entries:
                self._last_read = None  # every unacknowledged entry read again: new ones now
            else:
                self._last_read = entries[-1][0]
        self._unapplied.extend(entries)
        self._apply()

    def _apply(self) -> None:
        """Deliver what was read, in order, then read on; stop while a live subscriber's
        queue is filling: the rest stays unacknowledged meanwhile, in the stream and here."""
        unapplied = self._unapplied
        now = self.ctx.core.clock.monotonic()
        while unapplied:
            entry_id, fields = unapplied.popleft()
            self._acks.entries.append(entry_id)
            congested = self._apply_entry(fields[1], now) if fields else None
            if congested is not None:
                self.ctx.stats.inbox_pauses += 1
                self.ctx.core.timers.call_at(now + PROGRESS_WINDOW / 5, self._check_drained,
                                             congested, self.ctx.inbox)
                return
        self._read()

    def _check_drained(self, session: Session, inbox: RedisLink | None) -> None:
        if inbox is not self.ctx.inbox:
            return  # reconnected meanwhile: reading started again
        now = self.ctx.core.clock.monotonic()
        core = self.ctx.core
        if session.connection is not None and not session.stalled and \
                session.queued > core.config.max_memory_queued_messages // 4:
            if now - session.progress_at <= PROGRESS_WINDOW:
                core.timers.call_at(now + PROGRESS_WINDOW / 5, self._check_drained,
                                    session, inbox)
                return
            session.stalled = True  # not draining: it throttles no one, its queue takes it
        self._apply()

    def _apply_entry(self, data: bytes, now: float) -> Session | None:
        """Deliver or act on one stream entry; the session it congested, if one."""
        try:
            entry = unpack_entry(data, now)
        except ValueError as exc:
            log.warning("cluster: stream entry skipped: %s", exc)
            return None
        if isinstance(entry, Forwarded):
            return self._deliver(entry, now)
        if isinstance(entry, Takeover):
            self._claims.takeover(entry)
        elif isinstance(entry, Taken):
            self._claims.taken(entry)
        return None

    def _deliver(self, entry: Forwarded, now: float) -> Session | None:
        ctx = self.ctx
        sessions = self._sessions
        if entry.only is not None:
            if sessions is not None:
                sessions.deliver_only(entry, now)
            return None
        seen = ctx.seen
        if entry.message_id in seen:
            ctx.stats.duplicates += 1
            return None
        # The clock now, not the batch's: a session that arrived earlier in this batch
        # (a take-over's answer) got this one here (see sessions.py).
        seen[entry.message_id] = self.ctx.core.clock.monotonic()
        if len(seen) > _SEEN_LIMIT:
            seen.popitem(last=False)
        ctx.stats.received += 1
        message = entry.message
        if message.retain and message.topic.startswith(NODE_SYS):
            ctx.core.retained.set(message)  # another node's $SYS, for late subscribers
        if sessions is not None and sessions.only_delivered:
            delivered = sessions.only_delivered.get(entry.message_id)
            if delivered is not None:  # some sessions had it already (a move's overlap)
                route_only(ctx.core, message, now, _NotIn(delivered))
                return None
        congested = route(ctx.core, message, now, frozenset(entry.shares)).congested
        if sessions is not None and sessions.moved:
            sessions.pass_on(message, entry.message_id, now)
        return congested
