"""The broker's state and protocol logic, free of sockets: the event loop feeds it packets and
socket events, and flushes what it queues on each connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import version as package_version
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
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Subscribe,
    Unsubscribe,
    UnsupportedProtocolVersion,
    Will,
)
from mqlite.protocol.qos_flow import FlowState

from . import handle_connect, handle_publish, handle_subscribe
from .config import NEVER_EXPIRES, BrokerConfig
from .connection import CONNECTED, CONNECTING, VERSION_NAMES, Connection
from .hooks import ClientInfo, Hooks
from .message import Message
from .retained import RetainedMessages
from .routing import route
from .services import RouteResult
from .session import QUEUED, Delivery, Session
from .stats import Stats
from .store import SessionStore, StoredSession, StoredState, StoreWriteError
from .subscriptions import SubscriptionIndex
from .timers import TimerHeap

log = logging.getLogger("mqlite.broker")

# Seconds a congested session may go without completing a delivery before it counts as
# stalled; then it throttles no one and its own queue overflows instead.
STALL_TIMEOUT = 1.0


class BrokerCore:
    def __init__(self, config: BrokerConfig, store: SessionStore,
                 hooks: Hooks | None = None) -> None:
        self.config = config
        self.store = store
        self.hooks = hooks if hooks is not None else Hooks()
        self.timers = TimerHeap()
        self.sessions: dict[str, Session] = {}
        self.index = SubscriptionIndex()
        self.retained = RetainedMessages()
        self.stats = Stats()
        # Connections with output to flush or a close to carry out this loop turn.
        self.dirty: set[Connection] = set()
        # Flow control: publishers paused until the session they flood drains.
        self.paused: dict[Connection, Session] = {}
        self.started = time.monotonic()
        self._last_drop_log = 0.0
        self._restore(store.load())
        if config.sys_interval > 0:
            self.timers.call_at(self.started, self._publish_sys)

    # -- connections -----------------------------------------------------------------------

    def new_connection(self, sock: Any, peer: str, now: float, listener: str = "") -> Connection:
        reader = PacketReader("server", max_packet_size=self.config.connect_packet_limit,
                              max_topic_levels=self.config.max_topic_levels)
        conn = Connection(sock, peer, reader, self.dirty, now + self.config.connect_timeout)
        conn.listener = listener
        conn.deadline_check = self.timers.call_at(conn.deadline, self._check_deadline, conn)
        return conn

    def handle_packet(self, conn: Connection, packet: Packet, now: float) -> None:
        if conn.state == CONNECTING:
            assert isinstance(packet, Connect)  # the server-side reader lets nothing else first
            handle_connect.handle_connect(self, conn, packet, now)
            check = conn.deadline_check
            if (conn.state == CONNECTED and conn.keepalive and check is not None
                    and conn.deadline < check.deadline):
                # The connect timeout's check would come too late for this keep alive; a
                # later one re-arms itself at the new deadline (one check per connection).
                check.cancel()
                conn.deadline_check = self.timers.call_at(conn.deadline, self._check_deadline,
                                                          conn)
            return
        # The server-side reader lets through only the packet types in the table.
        _HANDLERS[type(packet)](self, conn, packet, now)

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
            self._log_refused(conn, reason)
            return
        self.drop(conn, reason, error.reason_code)

    def drop(self, conn: Connection, reason: str, disconnect_code: int | None = None) -> None:
        """Close ``conn`` now (after flushing), handling its will and session at once."""
        conn.close(reason, disconnect_code)
        self._detach(conn)

    def socket_closed(self, conn: Connection, reason: str) -> None:
        """The event loop closed the socket (the client went away, an error, or our close)."""
        if conn.open:
            conn.close(reason)
        self.paused.pop(conn, None)
        self._detach(conn)

    # -- flow control ----------------------------------------------------------------------

    def pause(self, conn: Connection, session: Session, now: float) -> None:
        """Stop taking packets from ``conn`` until ``session``'s queue drains."""
        if conn in self.paused or session.connection is conn:
            return
        self.paused[conn] = session
        self.timers.call_at(now + STALL_TIMEOUT, self._check_stall, conn, session,
                            session.completed)

    def resume_publishers(self, session: Session) -> None:
        for conn in [c for c, s in self.paused.items() if s is session]:
            del self.paused[conn]

    def _check_stall(self, conn: Connection, session: Session, completed: int) -> None:
        if self.paused.get(conn) is not session:
            return
        if session.completed == completed or session.connection is None:
            session.stalled = True  # not draining: stop throttling on its behalf
            self.resume_publishers(session)
        else:
            self.timers.call_at(time.monotonic() + STALL_TIMEOUT, self._check_stall, conn,
                                session, session.completed)

    def _check_deadline(self, conn: Connection) -> None:
        """Connect timeout before CONNECT; 1.5 x keep alive of silence after it."""
        if not conn.open or not conn.deadline:
            return
        if conn in self.paused:  # we stopped reading it: its silence is ours
            conn.deadline = time.monotonic() + 1.5 * conn.keepalive
        if time.monotonic() < conn.deadline:
            conn.deadline_check = self.timers.call_at(conn.deadline, self._check_deadline, conn)
        elif conn.state == CONNECTING:
            conn.close("no CONNECT within the connect timeout")
            self._log_refused(conn, "connect timeout")
        else:
            self.drop(conn, "keep alive timeout", ReasonCode.KEEP_ALIVE_TIMEOUT)

    def _handle_disconnect(self, conn: Connection, packet: Disconnect) -> None:
        session = conn.session
        assert session is not None
        expiry = packet.properties.session_expiry_interval
        if expiry is not None:
            if session.expiry_interval == 0 and expiry > 0:
                self.drop(conn, "DISCONNECT set a session expiry after connecting with none",
                          ReasonCode.PROTOCOL_ERROR)
                return
            self._set_expiry(session, expiry)
        conn.publish_will = packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
        reason = "client disconnected" + (" with will" if conn.publish_will else "")
        conn.close(reason)
        self._detach(conn)

    def _detach(self, conn: Connection) -> None:
        session = conn.session
        if session is None:
            return
        conn.session = None
        if session.connection is not conn:
            return
        session.connection = None
        session.disconnected_at = time.time()
        self.resume_publishers(session)  # nobody waits for an offline session's queue
        self.stats.clients_connected -= 1
        log.info("client %s disconnected from %s (MQTT %s): %s", conn.client_id, conn.peer,
                 VERSION_NAMES.get(conn.version), conn.close_reason)
        if self.hooks.active and conn.client_info is not None:
            self.hooks.notify("on_disconnect", conn.client_info, conn.close_reason)
        will, session.will = session.will, None
        if will is not None and conn.publish_will:
            delay = will.properties.will_delay_interval or 0
            if delay and session.persistent:
                session.pending_will = will
                session.will_timer = self.timers.call_at(
                    time.monotonic() + min(delay, session.expiry_interval),
                    self._fire_delayed_will, session)
            else:
                self.publish_will(session.client_id, will)
        if not session.persistent:
            self.end_session(session)
            return
        self.save_session(session)  # the will is gone, or pending its delay
        if session.expiry_interval != NEVER_EXPIRES:
            session.expiry_timer = self.timers.call_at(
                time.monotonic() + session.expiry_interval, self._expire_session, session)

    # -- sessions --------------------------------------------------------------------------

    def attach(self, conn: Connection, session: Session) -> None:
        """Bind a fresh connection to its session, cancelling a pending will and expiry."""
        for timer in (session.will_timer, session.expiry_timer):
            if timer is not None:
                timer.cancel()
        # Back before the will delay ran out: that will is not sent (spec 3.1.3.2.2).
        session.pending_will = None
        session.will_timer = session.expiry_timer = None
        session.connection = conn
        session.disconnected_at = None
        conn.session = session
        self.stats.clients_connected += 1
        self.stats.clients_total += 1

    def save_session(self, session: Session) -> None:
        will = session.will or session.pending_will
        self.store.save_session(StoredSession(
            client_id=session.client_id, protocol_version=session.protocol_version,
            expiry_interval=session.expiry_interval, will=will,
            will_delay=(will.properties.will_delay_interval or 0) if will else 0,
            disconnected_at=session.disconnected_at))

    def _set_expiry(self, session: Session, expiry: int) -> None:
        was_persistent = session.persistent
        session.expiry_interval = expiry
        if session.persistent:
            self.save_session(session)
        elif was_persistent:
            self.store.delete_session(session.client_id)

    def end_session(self, session: Session) -> None:
        """Discard a session: its subscriptions, queue and in-flight state."""
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        for topic_filter in session.subscriptions:
            self.index.unsubscribe(session.client_id, topic_filter)
        if session.expiry_timer is not None:
            session.expiry_timer.cancel()
        if session.will_timer is not None:
            session.will_timer.cancel()
        if session.pending_will is not None:  # the session ends before the will delay
            will, session.pending_will = session.pending_will, None
            self.publish_will(session.client_id, will)
        if session.persistent:  # a session that never persisted has nothing stored
            self.store.delete_session(session.client_id)

    def _expire_session(self, session: Session) -> None:
        if session.connection is None:
            log.info("session %s expired", session.client_id)
            self.end_session(session)
            if self.hooks.active:
                self.hooks.notify("on_session_expired", session.client_id)

    def _fire_delayed_will(self, session: Session) -> None:
        will, session.pending_will = session.pending_will, None
        session.will_timer = None
        if will is not None:
            if self.sessions.get(session.client_id) is session:
                self.save_session(session)
            self.publish_will(session.client_id, will)

    # -- messages --------------------------------------------------------------------------

    def publish_will(self, client_id: str, will: Will) -> None:
        properties = will.properties
        if properties.will_delay_interval is not None:
            properties = replace(properties, will_delay_interval=None)
        self.publish(Message(topic=will.topic, payload=will.payload, qos=will.qos,
                             retain=will.retain, properties=properties, origin=client_id),
                     time.monotonic())

    def publish(self, message: Message, now: float) -> RouteResult:
        """Retain (or delete the retained message) as flagged, then route."""
        expiry = message.properties.message_expiry_interval
        if expiry is not None and message.expires_at is None:
            message.expires_at = now + expiry
        if message.retain:
            if message.payload:
                self.retained.set(message)
                self.store.save_retained(message)
            elif self.retained.delete(message.topic):
                self.store.delete_retained(message.topic)
        return route(self, message, now)

    def client_info_of(self, session: Session) -> ClientInfo:
        """Who a session belongs to, for access checks; for a session restored from the
        store and not yet reconnected, only its client id and protocol version are known."""
        info = session.client_info
        if info is None:
            info = session.client_info = ClientInfo(
                client_id=session.client_id, peer="", listener="",
                protocol_version=session.protocol_version)
        return info

    def count_drop(self, session: Session | None, why: str,
                   message: Message | None = None) -> None:
        self.stats.messages_dropped += 1
        if self.hooks.active and message is not None:
            self.hooks.notify("on_message_dropped", session.client_id if session else None,
                              message, why)
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0:  # rate limited: a flood must not flood the log
            self._last_drop_log = now
            who = f" for {session.client_id}" if session else ""
            log.warning("message dropped%s: %s (%d dropped so far)", who, why,
                        self.stats.messages_dropped)

    def _publish_sys(self) -> None:
        now = time.monotonic()
        stats = self.stats
        values = {
            "version": f"mqlite {package_version('mqlite')}",
            "uptime": f"{int(now - self.started)} seconds",
            "clients/connected": str(stats.clients_connected),
            "clients/total": str(len(self.sessions)),
            "messages/received": str(stats.messages_received),
            "messages/sent": str(stats.messages_sent),
            "messages/dropped": str(stats.messages_dropped),
            "retained messages/count": str(len(self.retained)),
        }
        for name, value in values.items():
            message = Message(topic=f"$SYS/broker/{name}", payload=value.encode(), qos=0,
                              retain=True)
            self.retained.set(message)  # in memory only: $SYS is rebuilt on every start
            route(self, message, now)
        self.timers.call_at(now + self.config.sys_interval, self._publish_sys)

    # -- start and stop --------------------------------------------------------------------

    def _restore(self, state: StoredState) -> None:
        """Rebuild sessions and retained messages from the store, all disconnected, counting
        the time the broker was down against session expiry and will delays."""
        now = time.monotonic()
        wall = time.time()
        wills: list[tuple[str, Will]] = []  # published once every session is back
        for message in state.retained.values():
            if message.expired(now):
                self.store.delete_retained(message.topic)
            else:
                self.retained.set(message)
        for client_id, stored in state.sessions.items():
            down = wall - stored.disconnected_at if stored.disconnected_at is not None else 0.0
            expiry = stored.expiry_interval
            if expiry != NEVER_EXPIRES and stored.disconnected_at is not None and down >= expiry:
                self.store.delete_session(client_id)  # expired while the broker was down
                if stored.will is not None:  # a will still waiting goes at the session's end
                    wills.append((client_id, stored.will))
                continue
            session = self._restore_session(client_id, stored, state, now)
            will = stored.will
            if will is not None and stored.disconnected_at is None:
                # The broker died while the client was connected: its connection ended
                # without DISCONNECT.
                wills.append((client_id, will))
            elif will is not None:  # a delayed will, still waiting
                session.pending_will = will
                session.will_timer = self.timers.call_at(
                    now + max(0.0, min(stored.will_delay, expiry) - down),
                    self._fire_delayed_will, session)
            if stored.disconnected_at is None:
                self.save_session(session)  # disconnected as of now (and its will sent)
            if expiry != NEVER_EXPIRES:
                session.expiry_timer = self.timers.call_at(
                    now + max(0.0, expiry - down), self._expire_session, session)
        for client_id, will in wills:
            self.publish_will(client_id, will)
        if state.sessions:
            log.info("restored %d sessions and %d retained messages", len(self.sessions),
                     len(self.retained))

    def _restore_session(self, client_id: str, stored: StoredSession, state: StoredState,
                         now: float) -> Session:
        session = Session(client_id, stored.protocol_version, stored.expiry_interval)
        # A session stored as connected lost its connection when the broker went down: it
        # counts as disconnected from now.
        session.disconnected_at = stored.disconnected_at or time.time()
        for topic_filter, options in state.subscriptions.get(client_id, {}).items():
            session.subscriptions[topic_filter] = options
            self.index.subscribe(client_id, topic_filter, options)
        deliveries = state.deliveries.get(client_id, {})
        for seq in sorted(deliveries):
            record = deliveries[seq]
            session.next_seq = max(session.next_seq, seq + 1)
            delivery = Delivery(seq, record.message, record.qos, record.retain,
                                record.subscription_ids)
            if record.packet_id is not None and record.state != QUEUED:
                delivery.packet_id = record.packet_id
                delivery.state = FlowState(record.state)
                session.inflight[record.packet_id] = delivery
            elif record.message.expired(now):
                self.store.delete_delivery(client_id, seq)  # expired while the broker was down
            else:
                session.queue_append(delivery)
                session.queued_bytes += record.message.size
        session.inbound_qos2 = set(state.inbound_qos2.get(client_id, ()))
        self.sessions[client_id] = session
        return session

    def shutdown(self, connections: list[Connection]) -> None:
        """Server shutting down: MQTT 5 clients get DISCONNECT 0x8B. No will is published,
        and persistent sessions are stored without one: the clients did nothing wrong."""
        for conn in connections:
            conn.publish_will = False
            if conn.session is not None:
                conn.session.will = None
            conn.close("server shutting down", ReasonCode.SERVER_SHUTTING_DOWN)
            self._detach(conn)

    def storage_failed(self, error: StoreWriteError, connections: set[Connection]) -> None:
        """A write or the turn's commit failed: nothing of this turn is stored, so nothing of
        it may be acknowledged. The connections handled in it lose their queued output and are
        closed (their clients resend what was not acknowledged); the rest keep going."""
        log.error("%s: closing %d connection(s) without acknowledging", error, len(connections))
        self.store.rollback()
        for conn in connections:
            conn.out.clear()
            conn.out_size = 0
            if conn.open:
                conn.publish_will = False
                self.drop(conn, "the broker could not store its messages",
                          ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR)
        try:
            self.store.commit()  # what the closes themselves wrote, if the store recovered
        except StoreWriteError:
            self.store.rollback()

    def _log_refused(self, conn: Connection, reason: str) -> None:
        log.info("connection from %s refused: %s", conn.peer, reason)


def _pingreq(core: BrokerCore, conn: Connection, packet: Pingreq, now: float) -> None:
    conn.send(Pingresp())


def _disconnect(core: BrokerCore, conn: Connection, packet: Disconnect, now: float) -> None:
    core._handle_disconnect(conn, packet)


def _auth(core: BrokerCore, conn: Connection, packet: Auth, now: float) -> None:
    core.drop(conn, "AUTH without an authentication method", ReasonCode.PROTOCOL_ERROR)


# The handler of each packet type a client may send once connected (CONNECT goes to
# handle_connect, before this table is used).
_HANDLERS: dict[type[Packet], Callable[[BrokerCore, Connection, Any, float], None]] = {
    Publish: handle_publish.handle_publish,
    Puback: handle_publish.handle_ack,
    Pubrec: handle_publish.handle_ack,
    Pubcomp: handle_publish.handle_ack,
    Pubrel: handle_publish.handle_pubrel,
    Subscribe: handle_subscribe.handle_subscribe,
    Unsubscribe: handle_subscribe.handle_unsubscribe,
    Pingreq: _pingreq,
    Disconnect: _disconnect,
    Auth: _auth,
}
