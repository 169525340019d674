"""Which node holds each client id: an owner key per id, set by a Lua compare-and-set at
CONNECT to this node's claim ``node|epoch|sequence``, which returns the claim it replaced.

When that claim is another live node's, this CONNECT waits (at most ``takeover_timeout``)
while that node closes its connection (MQTT 5 DISCONNECT 0x8E), publishes the will if due, and
answers. Claims are ordered by Redis, so of two CONNECTs with one id on two nodes the later
claim wins, and the node of the earlier one closes its connection when told: one is left.

A persistent session moves with its client id: the old node stores it (in Redis, see
sessions.py) and forgets it; the new one takes it from Redis before CONNACK. Other
sessions end on the old node.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mqlite.protocol import ReasonCode

from ..engine.connection import Connection
from ..engine.timers import Timer
from . import scripts as keys
from .context import NodeContext
from .link import Reply, failed
from .sessions import NodeSessions
from .wire import Taken, Takeover, pack_taken, pack_takeover

log = logging.getLogger("mqlite.cluster")

Proceed = Callable[[bool, float], None]  # (claimed, now): admit the CONNECT, or refuse it


class _Pending:
    __slots__ = ("claim", "client_id", "conn", "previous", "proceed", "superseded",
                 "superseded_by", "timer", "waiting")

    def __init__(self, conn: Connection, client_id: str, claim: str, proceed: Proceed) -> None:
        self.conn = conn
        self.client_id = client_id
        self.claim = claim
        self.proceed = proceed
        self.waiting = False  # for the old owner's answer
        self.previous = ""  # the claim this one replaced (another node's, when waiting)
        self.superseded = False  # a later claim on another node replaced this one meanwhile
        self.superseded_by = ""  # that claim
        self.timer: Timer | None = None


def node_of(claim: str) -> str:
    return claim.split("|", 1)[0]


class Claims:
    def __init__(self, ctx: NodeContext, sessions: NodeSessions | None) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.owned = ctx.owned  # client id -> this node's claim on it
        self._pending: dict[str, _Pending] = {}  # by claim
        self._sequence = 0

    def claim(self, conn: Connection, client_id: str, proceed: Proceed) -> None:
        """Claim ``client_id`` for ``conn`` (not read meanwhile); then ``proceed``."""
        ctx = self.ctx
        cmd = ctx.cmd
        if not ctx.available or cmd is None:
            proceed(False, self.ctx.core.clock.monotonic())
            return
        self._sequence += 1
        claim = f"{ctx.node}|{ctx.epoch}|{self._sequence}"
        pending = self._pending[claim] = _Pending(conn, client_id, claim, proceed)
        ctx.core.wait_connect(conn)
        cmd.command("EVALSHA", keys.CLAIM.sha, 1, keys.owner_key(client_id), claim,
                    "mq:node:", reply=lambda reply: self._claimed(pending, reply))

    def _claimed(self, pending: _Pending, reply: Reply) -> None:
        if failed(reply):
            self._finish(pending, False)
            return
        old, alive = reply[0].decode(), int(reply[1])
        old_node = node_of(old) if old else ""
        if old and old_node != self.ctx.node and alive:
            pending.waiting = True
            pending.previous = old
            if self.sessions is not None:
                self.sessions.announce(pending.client_id)  # routes before the request
            self.ctx.send_entry(old_node, pack_takeover(pending.client_id, old, pending.claim))
            pending.timer = self.ctx.core.timers.call_at(
                self.ctx.core.clock.monotonic() + self.ctx.config.takeover_timeout,
                self._timed_out, pending)
            return
        self._finish(pending, True)

    def _timed_out(self, pending: _Pending) -> None:
        if self._pending.get(pending.claim) is pending:
            log.warning("cluster: node %s did not answer the take-over of client %s within "
                        "%.1f s; going on (what it holds for the session comes when it is "
                        "back or adopted)", node_of(pending.previous), pending.client_id,
                        self.ctx.config.takeover_timeout)
            self._finish(pending, True)

    def taken(self, entry: Taken) -> None:
        """The old owner let the id go."""
        pending = self._pending.get(entry.owner)
        if pending is not None and pending.waiting:
            self._finish(pending, True)

    def _finish(self, pending: _Pending, claimed: bool) -> None:
        self._pending.pop(pending.claim, None)
        if pending.timer is not None:
            pending.timer.cancel()
        client_id, conn = pending.client_id, pending.conn
        core = self.ctx.core
        sessions = self.sessions
        if claimed and sessions is not None and conn.open and not sessions.take(client_id):
            claimed = False  # its stored session could not be read: refused, as in an outage
        if sessions is not None:
            sessions.settle(client_id)
        core.resume_connect(conn, lambda now: pending.proceed(claimed, now))
        if not claimed:
            return
        session = core.sessions.get(client_id)
        if session is None or session.connection is not conn:
            self._release(client_id, pending.claim)  # the connection went away meanwhile
            return
        self.owned[client_id] = pending.claim
        if pending.superseded:
            self._let_go(client_id, node_of(pending.superseded_by))

    def takeover(self, entry: Takeover) -> None:
        """Another node claimed an id whose claim was ``entry.owner`` (this node's)."""
        pending = self._pending.get(entry.owner)
        if pending is not None:
            pending.superseded = True  # admitted, then closed: the later claim wins
            pending.superseded_by = entry.reply_to
        elif self.owned.get(entry.client_id, entry.owner) == entry.owner:
            self._let_go(entry.client_id, node_of(entry.reply_to))
        self.ctx.send_entry(node_of(entry.reply_to), pack_taken(entry.client_id,
                                                                  entry.reply_to))

    def _let_go(self, client_id: str, to_node: str) -> None:
        """Close the id's connection here (its will published if due); a persistent session
        is stored and forgotten here (the other node takes it), any other ends."""
        by = f"node {to_node}"
        self.owned.pop(client_id, None)
        core = self.ctx.core
        session = core.sessions.get(client_id)
        if session is None:
            return
        self.ctx.stats.takeovers += 1
        conn = session.connection
        if conn is not None:
            log.info("cluster: client %s taken over by %s", client_id, by)
            conn.close(f"session taken over by {by}", ReasonCode.SESSION_TAKEN_OVER)
            core.sessions.detach(conn)
        session = core.sessions.get(client_id)
        if session is None:
            return
        if session.persistent and self.sessions is not None:
            self.sessions.let_go(session, to_node, f"session taken over by {by}")
        else:
            core.sessions.end(session, promise=False)

    def session_ended(self, client_id: str) -> None:
        """A session ended here: its id is free (unless another claim replaced this one)."""
        claim = self.owned.pop(client_id, None)
        if claim is not None:
            self._release(client_id, claim)

    def _release(self, client_id: str, claim: str) -> None:
        cmd = self.ctx.cmd
        if cmd is not None and self.ctx.available:
            cmd.command("EVALSHA", keys.RELEASE.sha, 1, keys.owner_key(client_id), claim)

    def outage(self) -> None:
        """Redis is gone: every CONNECT waiting for a claim is refused."""
        for pending in list(self._pending.values()):
            self._finish(pending, False)
