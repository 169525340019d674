"""The sessions registry: every session by client id, and what happens to sessions over time —
opening one for a CONNECT (take-over, clean start, resumption), binding it to its connection,
detaching it when the connection ends (wills, expiry timers), expiry, delayed wills, and
rebuilding the sessions from the store at start-up. Session state changes go to the journal.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import replace

from mqlite.protocol import ReasonCode, Will
from mqlite.protocol.qos_flow import FlowState

from ..config.broker_config import NEVER_EXPIRES
from ..hooks import ClientInfo
from ..message import Message
from .connection import VERSION_NAMES, Connection
from .journal import StoredSession
from .retained import RetainedMessages
from .services import BrokerServices, Context, SessionTotals
from .session import QUEUED, Delivery, Session
from .stats import EXPIRED
from .store import StoredState
from .stored_queue import load_all
from .timers import TimerHeap

log = logging.getLogger("mqlite.broker")


class SessionRegistry(Mapping[str, Session]):
    """A read-only mapping of client id to session, with the operations that change it.

    ``by_id`` is the mapping itself, for routing's hot path (a plain dict lookup)."""

    def __init__(self, broker: BrokerServices, timers: TimerHeap) -> None:
        self.by_id: dict[str, Session] = {}
        # The client ids of in-process sessions (bridges' local sides): no client may take
        # them (the hooks trust them too: Hooks.trusted).
        self.internal: set[str] = set()
        self._broker = broker
        self._timers = timers

    def __getitem__(self, client_id: str) -> Session:
        return self.by_id[client_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_id)

    def __len__(self) -> int:
        return len(self.by_id)

    def totals(self) -> SessionTotals:
        online = subscriptions = shared = queued = queued_bytes = inflight = deepest = 0
        deepest_id = None
        for session in self.by_id.values():
            online += session.connection is not None
            subscriptions += len(session.subscriptions)
            shared += sum(1 for f in session.subscriptions if f.startswith("$share/"))
            depth = session.queued
            queued += depth
            queued_bytes += session.queued_bytes
            if depth > deepest:
                deepest, deepest_id = depth, session.client_id
            inflight += len(session.inflight)
        return SessionTotals(online, len(self.by_id) - online, subscriptions, shared, queued,
                             queued_bytes, inflight, deepest, deepest_id)

    # -- connecting ------------------------------------------------------------------------

    def new_client_id(self) -> str:
        """A client id for a client that sent none [MQTT-3.1.3-6]."""
        while True:
            client_id = f"mqlite-{secrets.token_hex(8)}"
            if client_id not in self.by_id:
                return client_id

    def open(self, conn: Connection, *, client_id: str, protocol_version: int, expiry: int,
             clean_start: bool, will: Will | None) -> tuple[Session, bool]:
        """The session for an accepted CONNECT, bound to ``conn``, and whether it existed
        (session present). A connection holding the session is taken over [MQTT-3.1.4-2]:
        it ends as if the network failed. The session's record is journaled, promised by the
        CONNACK that follows."""
        session = self.by_id.get(client_id)
        if session is not None and session.connection is not None:
            old = session.connection
            old.close("session taken over", ReasonCode.SESSION_TAKEN_OVER)
            self.detach(old)
            session = self.by_id.get(client_id)  # a session ending with its connection is gone
        if session is not None and clean_start:
            self.end(session, promise=True)
            session = None
        present = session is not None
        if session is None:
            session = self.by_id[client_id] = Session(client_id, protocol_version, expiry)
        elif (session.expiry_interval > 0) != (expiry > 0):
            self._change_persistence(session, expiry)
        session.protocol_version = protocol_version
        session.expiry_interval = expiry
        session.will = will
        self._attach(conn, session)
        conn.context = Context(conn, session, self._broker)
        # Saved if persistent; deleted if it no longer is (a stored session resumed with 0).
        self._broker.journal.session(session, promise=True)
        return session, present

    def _change_persistence(self, session: Session, expiry: int) -> None:
        """A session resumed with a persistence it did not have (MQTT 5 Session Expiry
        Interval 0 after > 0, or the reverse): its queue moves to memory before the store
        forgets it, or into the store before it may be left there."""
        broker = self._broker
        if expiry == 0:
            load_all(broker, session)
            broker.queued_bytes_stored -= session.queued_bytes
            return
        broker.queued_bytes_stored += session.queued_bytes
        session.expiry_interval = expiry  # so that the journal records what follows
        for delivery in (*session.inflight.values(), *session.queue):
            broker.journal.delivery(session, delivery, promise=True)

    def session_of(self, conn: Connection) -> Session | None:
        """The session ``conn`` is attached to, if it is."""
        context: Context | None = conn.context
        return context.session if context is not None else None

    def _attach(self, conn: Connection, session: Session) -> None:
        """Bind a fresh connection to its session, cancelling a pending will and expiry."""
        for timer in (session.will_timer, session.expiry_timer):
            if timer is not None:
                timer.cancel()
        # Back before the will delay ran out: that will is not sent (spec 3.1.3.2.2).
        session.pending_will = None
        session.will_timer = session.expiry_timer = None
        session.connection = conn
        session.disconnected_at = None
        session.connected_at = self._broker.clock.time()
        stats = self._broker.stats
        stats.clients_connected += 1
        stats.clients_total += 1
        stats.clients_maximum = max(stats.clients_maximum, stats.clients_connected)

    def set_expiry(self, session: Session, expiry: int) -> None:
        """A new Session Expiry Interval from DISCONNECT."""
        session.expiry_interval = expiry
        self._broker.journal.session(session, promise=False)

    # -- disconnecting and ending ----------------------------------------------------------

    def detach(self, conn: Connection) -> None:
        """``conn`` ended: publish or delay its will, and end its session or start its expiry."""
        context: Context | None = conn.context
        if context is None:
            return
        conn.context = None
        session = context.session
        if session.connection is not conn:
            return
        session.connection = None
        session.disconnected_at = self._broker.clock.time()
        # Offline, access checks of what is queued for it still see its last connection.
        session.client_info = conn.who()
        self._broker.resume_publishers(session)  # nobody waits for an offline session's queue
        self._broker.stats.clients_connected -= 1
        log.info("client %s disconnected from %s (MQTT %s): %s", conn.client_id, conn.peer,
                 VERSION_NAMES.get(conn.version), conn.close_reason,
                 extra={"event": "disconnect", "client_id": conn.client_id,
                        "peer": conn.peer, "listener": conn.listener})
        if self._broker.hooks.active:
            self._broker.hooks.notify("on_disconnect", conn.who(), conn.close_reason)
        will, session.will = session.will, None
        if will is not None and conn.publish_will:
            delay = will.properties.will_delay_interval or 0
            if delay and session.persistent:
                session.pending_will = will
                session.will_timer = self._timers.call_at(
                    self._broker.clock.monotonic() + min(delay, session.expiry_interval),
                    self._fire_delayed_will, session)
            else:
                self.publish_will(session.client_id, will)
        if not session.persistent:
            self.end(session, promise=False)
            return
        # Stored as disconnected, without the will, or with it pending its delay.
        self._broker.journal.session(session, promise=False)
        if session.expiry_interval != NEVER_EXPIRES:
            session.expiry_timer = self._timers.call_at(
                self._broker.clock.monotonic() + session.expiry_interval, self._expire, session)

    def end(self, session: Session, *, promise: bool) -> None:
        """Discard a session: its subscriptions, queue and in-flight state."""
        self._discard(session)
        if session.pending_will is not None:  # the session ends before the will delay
            will, session.pending_will = session.pending_will, None
            self.publish_will(session.client_id, will)
        self._broker.journal.session_ended(session, promise=promise)
        self._broker.cluster.session_ended(session.client_id)

    def forget(self, session: Session, reason: str) -> None:
        """Cluster mode: the session is another node's now (a client resumed it there, or
        that node adopted it while this one was cut off). It leaves this node's memory as it
        is, nothing journaled and no will published: its stored copy and its will moved with
        it. A connection still attached is closed (MQTT 5 DISCONNECT 0x8E)."""
        if self.by_id.get(session.client_id) is not session:
            return
        self._discard(session)
        session.pending_will = session.will = None
        session.stored = False
        conn = session.connection
        if conn is not None:
            session.connection = None
            conn.context = None  # detached here: nothing of it is journaled
            conn.publish_will = False
            self._broker.stats.clients_connected -= 1
            self._broker.resume_publishers(session)
            conn.close(reason, ReasonCode.SESSION_TAKEN_OVER)

    def _discard(self, session: Session) -> None:
        """What ending a session and forgetting it share: out of the registry and the
        subscription index, its timers cancelled."""
        if self.by_id.get(session.client_id) is session:
            del self.by_id[session.client_id]
            if session.expiry_interval > 0:
                self._broker.queued_bytes_stored -= session.queued_bytes
        for topic_filter in session.subscriptions:
            self._broker.index.unsubscribe(session.client_id, topic_filter)
        for timer in (session.expiry_timer, session.will_timer):
            if timer is not None:
                timer.cancel()

    def _expire(self, session: Session) -> None:
        if session.connection is None:
            log.info("session %s expired", session.client_id)
            self._broker.stats.sessions_expired += 1
            self.end(session, promise=False)
            if self._broker.hooks.active:
                self._broker.hooks.notify("on_session_expired", session.client_id)

    def _fire_delayed_will(self, session: Session) -> None:
        will, session.pending_will = session.pending_will, None
        session.will_timer = None
        if will is not None:
            if self.by_id.get(session.client_id) is session:
                self._broker.journal.session(session, promise=False)  # stored without its will
            self.publish_will(session.client_id, will)

    def publish_will(self, client_id: str, will: Will) -> None:
        properties = will.properties
        if properties.will_delay_interval is not None:
            properties = replace(properties, will_delay_interval=None)
        self._broker.publish(Message(topic=will.topic, payload=will.payload, qos=will.qos,
                                     retain=will.retain, properties=properties,
                                     origin=client_id), self._broker.clock.monotonic())

    def client_info_of(self, session: Session) -> ClientInfo:
        """Who a session belongs to, for access checks: its connection, or the last one it
        had; for a session restored from the store and not yet reconnected, only its client
        id and protocol version are known."""
        info = session.client_info
        if info is None:
            conn = session.connection
            if conn is not None:
                return conn.who()
            info = session.client_info = ClientInfo(
                client_id=session.client_id, peer="", listener="",
                protocol_version=session.protocol_version)
        return info

    # -- start-up --------------------------------------------------------------------------

    def restore(self, state: StoredState, retained: RetainedMessages, *,
                quiet: bool = False) -> None:
        """Rebuild sessions and retained messages from the store, all disconnected, counting
        the time the broker was down against session expiry and will delays (in cluster
        mode also sessions that moved here: ``quiet`` logs nothing of them)."""
        now = self._broker.clock.monotonic()
        wall = self._broker.clock.time()
        journal = self._broker.journal
        wills: list[tuple[str, Will]] = []  # published once every session is back
        for message in state.retained.values():
            if message.expired(now):
                journal.retained_deleted(message.topic, promise=False)
            else:
                retained.set(message)
        for client_id, stored in state.sessions.items():
            down = wall - stored.disconnected_at if stored.disconnected_at is not None else 0.0
            expiry = stored.expiry_interval
            if expiry != NEVER_EXPIRES and stored.disconnected_at is not None and down >= expiry:
                gone = Session(client_id, stored.protocol_version, expiry)
                gone.stored = True
                journal.session_ended(gone, promise=False)  # expired while the broker was down
                if stored.will is not None:  # a will still waiting goes at the session's end
                    wills.append((client_id, stored.will))
                continue
            session = self._restore_session(client_id, stored, state, now)
            will = stored.will
            if will is not None and stored.disconnected_at is None and not stored.will_delay:
                # The broker died while the client was connected (in cluster mode: the node
                # that had it): its connection ended without DISCONNECT.
                wills.append((client_id, will))
            elif will is not None:  # a delayed will, still waiting
                session.pending_will = will
                session.will_timer = self._timers.call_at(
                    now + max(0.0, min(stored.will_delay, expiry) - down),
                    self._fire_delayed_will, session)
            if stored.disconnected_at is None:
                journal.session(session, promise=False)  # disconnected as of now, no will
            if expiry != NEVER_EXPIRES:
                session.expiry_timer = self._timers.call_at(
                    now + max(0.0, expiry - down), self._expire, session)
        for client_id, will in wills:
            self.publish_will(client_id, will)
        if state.sessions and not quiet:
            log.info("restored %d sessions and %d retained messages", len(state.sessions),
                     len(retained))

    def _restore_session(self, client_id: str, stored: StoredSession, state: StoredState,
                         now: float) -> Session:
        session = Session(client_id, stored.protocol_version, stored.expiry_interval)
        session.stored = True
        # A session stored as connected lost its connection when the broker went down: it
        # counts as disconnected from now.
        session.disconnected_at = stored.disconnected_at or self._broker.clock.time()
        for topic_filter, options in state.subscriptions.get(client_id, {}).items():
            session.subscribe(topic_filter, options)
            self._broker.index.subscribe(client_id, topic_filter, options)
        deliveries = state.deliveries.get(client_id, {})
        for seq in sorted(deliveries):
            record = deliveries[seq]
            session.next_seq = max(session.next_seq, seq + 1)
            delivery = Delivery(seq, record.message, record.qos, record.retain,
                                record.subscription_ids)
            if record.packet_id is not None and record.state != QUEUED:
                delivery.packet_id = record.packet_id
                delivery.state = FlowState(record.state)
                session.restore_flight(delivery)
                session.inflight_bytes += len(record.message.payload)
            elif record.message.expired(now):
                # Expired while the broker was down.
                self._broker.stats.dropped[EXPIRED] += 1
                self._broker.journal.delivery_ended(session, seq, promise=False)
            else:
                session.queue_append(delivery)
                session.queued_bytes += record.message.size
        left = state.queues.get(client_id)
        if left is not None:  # left in the store, read back as the session sends them
            session.stored_queued = left.count
            session.stored_from = left.first_seq
            session.queued_bytes += left.bytes
            session.next_seq = max(session.next_seq, left.last_seq + 1)
        if session.expiry_interval > 0:
            self._broker.queued_bytes_stored += session.queued_bytes
        for packet_id in state.inbound_qos2.get(client_id, ()):
            session.await_pubrel(packet_id)
        self.by_id[client_id] = session
        return session
