"""Acknowledgements that wait for Redis: a QoS 1/2 PUBLISH (and a SUBSCRIBE) whose turn wrote
to Redis (forwards, a retained message, routes) is answered only once Redis has answered
those writes (and, if configured, that many replicas have them), as the store's commit comes
before an acknowledgement on one node. Unconfirmed, nothing of the turn is acknowledged."""

from __future__ import annotations

import logging
from functools import partial

from mqlite.protocol import ReasonCode

from ..engine.connection import NO_OUTPUT, Connection
from ..engine.session import Session
from .context import NodeContext
from .link import RedisLink, Reply, failed
from .route_sync import RouteSync

log = logging.getLogger("mqlite.cluster")

# A held connection, its session, and the inbound QoS 2 id to forget if the turn fails.
_Hold = tuple[Connection, Session | None, int | None]


class AckHolds:
    def __init__(self, ctx: NodeContext, routes: RouteSync) -> None:
        self.ctx = ctx
        self._routes = routes
        self._holds: list[_Hold] = []

    def hold(self, conn: Connection, session: Session | None, qos2_id: int | None) -> None:
        """What ``conn`` was sent this turn waits until Redis has answered the writes queued
        this turn."""
        cmd = self.ctx.cmd
        if cmd is None or not self.ctx.registered or not (cmd.busy or self._routes.pending):
            return
        conn.engine_holds += 1
        self._holds.append((conn, session, qos2_id))

    def queue(self, cmd: RedisLink) -> None:
        """After the turn's writes are queued: release the turn's holds when Redis answers."""
        if not self._holds:
            return
        holds, self._holds = self._holds, []
        replicas = self.ctx.config.wait_replicas
        if replicas:  # and the writes reached that many replicas
            confirmed: list[bool] = []
            cmd.command("WAIT", replicas, int(self.ctx.config.wait_timeout * 1000),
                        reply=partial(self._waited, confirmed, replicas))
            cmd.after_replies(lambda ok: self._release(holds, ok and all(confirmed)))
        else:
            cmd.after_replies(partial(self._release, holds))

    def fail_all(self) -> None:
        """Redis is lost: nothing held is acknowledged."""
        holds, self._holds = self._holds, []
        self._release(holds, False)

    @staticmethod
    def _waited(confirmed: list[bool], replicas: int, reply: Reply) -> None:
        confirmed.append(not failed(reply) and int(reply) >= replicas)
        if not confirmed[-1] and not failed(reply):
            log.warning("cluster: only %s of %d Redis replica(s) confirmed a turn's "
                        "forwards; not acknowledged", reply, replicas)

    def _release(self, holds: list[_Hold], ok: bool) -> None:
        core = self.ctx.core
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
