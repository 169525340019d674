"""The broker's state and protocol logic, free of sockets: the event loop feeds it packets and
socket events, and flushes what it queues on each connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from mqlite.protocol import (
    Auth,
    Connack,
    ConnackReturnCode,
    Connect,
    Disconnect,
    MQTTError,
    Packet,
    PacketReader,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Subscribe,
    Unsubscribe,
    UnsupportedProtocolVersion,
)

from ..config.broker_config import BrokerConfig
from ..hooks import ClientInfo, Hooks
from ..message import Message
from ..security.failure_delays import FailureDelays
from ..security.scram_auth import ScramAuthentication
from . import packet_log
from .authenticator import Authenticator, Post
from .clock import Clock
from .connection import CONNECTED, CONNECTING, NO_OUTPUT, Connection
from .deadlines import DeadlineBuckets
from .denials import DenialLog
from .handlers import acks, auth, connect, publish, subscribe
from .journal import Journal
from .reporting import Reporter
from .retained import RetainedMessages
from .routing import route
from .services import Cluster, Context, RouteResult
from .session import PROGRESS_WINDOW, Session
from .sessions import SessionRegistry
from .single_node import SingleNode
from .stats import Stats
from .store import SessionsFenced, SessionStore, StoreWriteError
from .stored_queue import forget_unstored, settle
from .subscriptions import SubscriptionIndex
from .sys_tree import SysTree
from .timers import TimerHeap

log = logging.getLogger("mqlite.broker")


class BrokerCore:
    def __init__(self, config: BrokerConfig, store: SessionStore,
                 hooks: Hooks | None = None, scram: ScramAuthentication | None = None,
                 post: Post | None = None, clock: Clock | None = None) -> None:
        """``scram``: the SCRAM-SHA-256 users of MQTT 5 enhanced authentication, if any;
        ``post``: runs a callable on the loop's thread, from any thread (blocking
        authentication hooks answer through it); ``clock``: where deadlines read the time
        (see clock.py)."""
        self.config = config
        self.clock = clock if clock is not None else Clock()
        self.store = store
        self.settling: set[Session] = set()
        self.queued_bytes_stored = 0
        # This turn's changes of persistent state, for the store at the end of the turn.
        self.journal = Journal()
        self.hooks = hooks if hooks is not None else Hooks()
        self.timers = TimerHeap()  # on the broker's clock
        self.system_timers = TimerHeap()  # on the machine's (see clock.py)
        # Each connection's connect timeout or keep alive deadline, checked by _check_deadline.
        self.deadlines = DeadlineBuckets(self.timers, self._check_deadline)
        self.index = SubscriptionIndex()
        self.retained = RetainedMessages()
        self.stats = Stats()
        self.denials = DenialLog()
        self.sessions = SessionRegistry(self, self.timers)
        self.auth_failures = FailureDelays()
        self.authenticator = Authenticator(self.hooks, post) if post is not None \
            else Authenticator(self.hooks)
        # MQTT 5 enhanced authentication's users (set by the Broker where configured).
        self.scram = scram
        # Connections with output to flush or a close to carry out this loop turn.
        self.dirty: set[Connection] = set()
        # Connections whose packets were handled this turn: their acks wait for the commit.
        self.handled: set[Connection] = set()
        # Connections not read for now, with the session they wait for: publishers paused
        # until the session they flood drains (flow control), or None for a CONNECT waiting
        # for a blocking authentication hook.
        self.paused: dict[Connection, Session | None] = {}
        self.started = time.monotonic()
        self._last_drop_log = 0.0
        self.sys_tree = SysTree(self)
        # The broker's place among others: a broker alone, unless it joins a cluster (join()).
        self.cluster: Cluster = SingleNode(self.clock)
        self.clustered = False
        if config.cluster is not None:
            self.index.watch_routes()  # counted from the restored sessions on
        # The plug-ins' faces to operators ($SYS, /metrics, the admin API, /health).
        self.reporters: list[Reporter] = []
        # Why the last commit failed, until one succeeds (reported by /health).
        self.store_error: str | None = None
        self.sessions.restore(store.load(), self.retained)
        packet_log.refresh()
        if config.sys_interval > 0:
            self.timers.call_at(self.clock.monotonic(), self._publish_sys)

    # -- connections -----------------------------------------------------------------------

    def new_connection(self, sock: Any, peer: str, now: float, listener: str = "") -> Connection:
        reader = PacketReader("server", max_packet_size=self.config.connect_packet_limit,
                              max_topic_levels=self.config.max_topic_levels)
        conn = Connection(sock, peer, reader, self.dirty, now + self.config.connect_timeout,
                          self.stats)
        conn.listener = listener
        self.deadlines.watch(conn, conn.deadline)
        return conn

    def handle_packet(self, conn: Connection, packet: Packet, now: float) -> None:
        if packet_log.SWITCH.on:
            packet_log.packet_in(conn.client_id, conn.peer, packet, conn.version)
        if conn.state == CONNECTING:
            if conn.held:
                return  # its CONNECT was refused; the refusal waits on a timer
            if conn.auth_exchange is not None:
                auth.before_connack(self, conn, packet, now)
            else:
                assert isinstance(packet, Connect)  # the server-side reader lets only CONNECT
                connect.handle_connect(self, conn, packet, now)
            self._arm_keepalive(conn)
            return
        # Attached from CONNACK on; the server-side reader lets through only the packet types
        # in the table.
        context: Context = conn.context
        context.now = now
        _HANDLERS[type(packet)](context, packet)

    def handle_error(self, conn: Connection, error: MQTTError) -> None:
        """Bad input: answer as the spec says for the client's version, then close."""
        reason = f"{type(error).__name__}: {error}"
        if conn.state == CONNECTING:
            if isinstance(error, UnsupportedProtocolVersion):
                # A 3.1.1-format CONNACK with return code 1 is what every version understands.
                conn.version = 4
                conn.send(Connack(reason_code=ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION))
            elif error.protocol_version == 5:
                conn.version = 5
                conn.send(Connack(reason_code=error.reason_code))
            conn.close(reason)
            self.stats.refusal(_code_name(error))
            self._log_refused(conn, reason)
            return
        self.drop(conn, reason, error.reason_code)

    def drop(self, conn: Connection, reason: str, disconnect_code: int | None = None) -> None:
        """Close ``conn`` now (after flushing), handling its will and session at once."""
        conn.close(reason, disconnect_code)
        self.sessions.detach(conn)

    def socket_closed(self, conn: Connection, reason: str) -> None:
        """The event loop closed the socket (the client went away, an error, or our close)."""
        if conn.open:
            conn.close(reason)
        self.paused.pop(conn, None)
        self.sessions.detach(conn)

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> None:
        """At ``deadline`` on the broker's clock."""
        self.timers.call_at(deadline, callback, *args)

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        """After ``seconds`` of the machine's time, whatever the broker's clock says (I/O,
        retries, anti-abuse delays: see clock.py)."""
        self.system_timers.call_at(time.monotonic() + seconds, callback, *args)

    def authenticate(self, conn: Connection, client: ClientInfo, password: bytes | None,
                     then: Callable[[bool, float], None]) -> bool | None:
        """The hooks' answer, or None when a blocking hook is asked on a worker thread: then
        ``conn`` is not read meanwhile, and ``then(allowed, now)`` runs on the loop's thread
        when the answer comes (not at all if the connection is gone by then)."""
        def answered(allowed: bool) -> None:
            self.resume_connect(conn, partial(then, allowed))

        allowed = self.authenticator.ask(client, password, answered)
        if allowed is None:
            self.paused[conn] = None
        return allowed

    def wait_connect(self, conn: Connection) -> None:
        self.paused[conn] = None

    def resume_connect(self, conn: Connection, then: Callable[[float], None]) -> None:
        if self.paused.pop(conn, conn) is not None or not conn.open:
            return  # closed meanwhile (or its connect timeout answered for it)
        self.handled.add(conn)
        try:
            then(self.clock.monotonic())
        except StoreWriteError:
            raise  # the loop's turn handles it, as for any packet
        except Exception:  # a bug must cost this connection, never the broker
            log.exception("internal error finishing the CONNECT from %s", conn.peer)
            self.drop(conn, "internal error", ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR)
            return
        self._arm_keepalive(conn)

    def _arm_keepalive(self, conn: Connection) -> None:
        checked_at = self.deadlines.checked_at(conn)
        if (conn.state == CONNECTED and conn.keepalive and checked_at is not None
                and conn.deadline < checked_at):
            # The connect timeout's check would come too late for this keep alive; a later
            # one re-arms itself at the new deadline (one check per connection).
            self.deadlines.watch(conn, conn.deadline)

    # -- flow control ----------------------------------------------------------------------

    def pause(self, conn: Connection, session: Session, now: float) -> None:
        """Stop taking packets from ``conn`` while ``session``'s queue drains: only while it
        does, judged by its progress, so that a subscriber that stopped reading delays no one
        (its own queue takes the messages, up to its limits)."""
        if conn in self.paused or session.connection is conn:
            return
        if now - session.progress_at > PROGRESS_WINDOW:
            session.stalled = True  # not draining: pausing would only delay everyone else
            return
        self.paused[conn] = session
        self.stats.publisher_pauses += 1
        # Checked on the machine's time: a subscriber stalls in it, whatever the broker's
        # clock (a test's, stopped) says.
        self.call_later(PROGRESS_WINDOW, self._check_progress, conn, session,
                        session.progress_at)

    def paused_publishers(self) -> int:
        """Publishers paused by flow control (not CONNECTs waiting for authentication)."""
        return sum(1 for waits in self.paused.values() if waits is not None)

    def resume_publishers(self, session: Session) -> None:
        for conn in [c for c, s in self.paused.items() if s is session]:
            del self.paused[conn]

    def _check_progress(self, conn: Connection, session: Session, progress_at: float) -> None:
        """A window after the pause or the last check: ``progress_at`` is the session's
        progress then, so no change means no progress for a whole window."""
        if self.paused.get(conn) is not session:
            return
        if session.connection is None or session.progress_at == progress_at:
            session.stalled = True  # stopped draining: stop throttling on its behalf
            self.stats.stalled_sessions += 1
            self.resume_publishers(session)
        else:
            self.call_later(PROGRESS_WINDOW, self._check_progress, conn, session,
                            session.progress_at)

    def _check_deadline(self, conn: Connection) -> None:
        """Connect timeout before CONNECT; 1.5 x keep alive of silence after it."""
        if not conn.open or not conn.deadline or conn.held:  # a held refusal closes it
            return
        if conn.state == CONNECTING and conn in self.paused:
            del self.paused[conn]  # its authentication answers too late: refused, not waited for
            conn.send(Connack(reason_code=ReasonCode.SERVER_UNAVAILABLE if conn.version == 5
                              else ConnackReturnCode.SERVER_UNAVAILABLE))
            conn.close("authentication did not answer within the connect timeout")
            self.stats.refusal("server_unavailable")
            self._log_refused(conn, conn.close_reason)
            return
        if conn in self.paused:  # we stopped reading it: its silence is ours
            conn.deadline = self.clock.monotonic() + 1.5 * conn.keepalive
        if self.clock.monotonic() < conn.deadline:
            self.deadlines.watch(conn, conn.deadline)
        elif conn.state == CONNECTING:
            conn.close("authentication not finished within the connect timeout"
                       if conn.auth_exchange is not None else
                       "no CONNECT within the connect timeout")
            self.stats.refusal("connect_timeout")
            self._log_refused(conn, "connect timeout")
        else:
            self.drop(conn, "keep alive timeout", ReasonCode.KEEP_ALIVE_TIMEOUT)

    # -- messages --------------------------------------------------------------------------

    def join(self, cluster: Cluster) -> None:
        """This broker is a node of ``cluster`` from now on (server.py, once the loop
        exists: the node needs it)."""
        self.cluster = cluster
        self.clustered = True

    def publish(self, message: Message, now: float) -> RouteResult:
        """Retain (or delete the retained message) as flagged, then route."""
        expiry = message.properties.message_expiry_interval
        if expiry is not None and message.expires_at is None:
            message.expires_at = now + expiry
        if message.retain:
            if message.payload:
                self.retained.set(message)
                self.journal.retained(message)
            elif self.retained.delete(message.topic):
                self.journal.retained_deleted(message.topic, promise=message.qos > 0)
        if self.clustered:
            return self.cluster.publish(message, now)
        return route(self, message, now)

    def count_drop(self, client_id: str | None, why: str, message: Message | None,
                   reason: str) -> None:
        self.stats.dropped[reason] += 1
        if self.hooks.active and message is not None:
            self.hooks.notify("on_message_dropped", client_id, message, why)
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0:  # rate limited: a flood must not flood the log
            self._last_drop_log = now
            who = f" for {client_id}" if client_id else ""
            log.warning("message dropped%s: %s (%d dropped so far)", who, why,
                        self.stats.messages_dropped)

    def _publish_sys(self) -> None:
        now = self.clock.monotonic()
        self.sys_tree.publish(now)
        self.timers.call_at(now + self.config.sys_interval, self._publish_sys)

    # -- stop and failures -----------------------------------------------------------------

    def shutdown(self, connections: list[Connection]) -> None:
        """Server shutting down: MQTT 5 clients get DISCONNECT 0x8B. No will is published,
        and persistent sessions are stored without one: the clients did nothing wrong."""
        for conn in connections:
            conn.publish_will = False
            session = self.sessions.session_of(conn)
            if session is not None:
                session.will = None
            conn.close("server shutting down", ReasonCode.SERVER_SHUTTING_DOWN)
            self.sessions.detach(conn)

    def health(self) -> str:
        """"" while the store and the plug-ins (cluster mode: Redis) are well, else why not."""
        if self.store_error is not None:
            return f"the store failed its last commit: {self.store_error}"
        for reporter in self.reporters:
            why = reporter.health()
            if why:
                return why
        return ""

    def commit(self) -> None:
        """End of a loop turn: the store applies and commits the turn's changes (syncing if
        one is promised), before the turn's packets are written."""
        changes = self.journal.take()
        try:
            self.store.apply(changes)
        except StoreWriteError:
            forget_unstored(self)
            raise
        if self.settling:
            settle(self)
        if self.clustered:  # the turn's Redis writes, after its own commit
            self.cluster.flush()
        if changes and self.store_error is not None:
            self.store_error = None  # stored again: the store has recovered

    def flush(self) -> None:
        """Commit everything, what the store lets wait too (a clean stop)."""
        self.commit()
        self.store.flush()

    def storage_failed(self, error: StoreWriteError, connections: set[Connection]) -> None:
        """The turn's changes could not be stored, so nothing of the turn may be acknowledged.
        The connections handled in it lose their queued output and are closed (their clients
        resend what was not acknowledged); the rest keep going."""
        log.error("%s: closing %d connection(s) without acknowledging", error, len(connections))
        if isinstance(error, SessionsFenced):
            self.cluster.sessions_fenced(error.client_ids)
        for conn in connections:
            conn.out = NO_OUTPUT
            conn.out_size = 0
            if conn.open:
                conn.publish_will = False
                self.drop(conn, "the broker could not store its messages",
                          ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR)
        try:
            self.commit()  # what the closes themselves changed, if the store recovered
        except StoreWriteError:
            self.journal.take()
        self.store_error = str(error)  # until a later turn stores something again

    def _log_refused(self, conn: Connection, reason: str) -> None:
        log.info("connection from %s refused: %s", conn.peer, reason)


def _code_name(error: MQTTError) -> str:
    """A CONNECT refused for bad input, as mqlite_connections_refused_total labels it."""
    if isinstance(error, UnsupportedProtocolVersion):
        return "unsupported_protocol_version"
    try:
        return ReasonCode(error.reason_code).name.lower()
    except ValueError:
        return "malformed_packet"


# The handler of each packet type a client may send once connected (CONNECT goes to
# handle_connect, before this table is used).
_HANDLERS: dict[type[Packet], Callable[[Context, Any], None]] = {
    Publish: publish.handle_publish,
    Pubrel: publish.handle_pubrel,
    Puback: acks.handle_ack,
    Pubrec: acks.handle_ack,
    Pubcomp: acks.handle_ack,
    Subscribe: subscribe.handle_subscribe,
    Unsubscribe: subscribe.handle_unsubscribe,
    Pingreq: connect.handle_pingreq,
    Disconnect: connect.handle_disconnect,
    Auth: auth.handle_auth,
}
