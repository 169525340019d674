"""The SQLite :class:`~mqlite.broker.engine.store.SessionStore`: the only module that writes
sessions with sqlite3 (``sqlite_schema`` makes the tables, ``sqlite_inspect`` reads them).

One connection, owned by the event loop. ``apply()`` gets one loop turn's journal changes
before that turn's packets go out, writes them in one transaction and commits it (group
commit); no transaction outlives a turn. WAL journal. A message queued for one session is
stored inline in its queue row, so it costs one INSERT and, acknowledged, a share of one range
DELETE; a body shared by several rows (fan-out, the retained table) is stored once and
referenced (``sqlite_rows``).

Durability: ``sync="full"`` (the default) makes every turn with a promised change (see
:mod:`~mqlite.broker.engine.journal`) survive power loss before its packets leave; ``"normal"``
survives a process crash only.

- A turn with a promised change commits it, with everything that waited before it, and then
  fsyncs the WAL itself: commits run at ``synchronous=NORMAL`` (WAL written, not synced), and
  the fsync makes the commit and all before it durable, as their frames precede. That is what
  SQLite's FULL does at every commit, done only where something was promised.
- A turn with unpromised changes outside the queue (a session saved at its disconnect, an
  expiry) commits them without a sync.
- A turn with only unpromised queue-row changes (QoS 1 sends, completed flows) keeps them in
  memory, net of later ones (a row sent and acknowledged before the next commit costs one
  DELETE, not an UPDATE and a DELETE), until a turn with something to commit, ``_DEFER_ROWS``
  rows, or ``_DEFER_SECONDS``: draining a queue then costs a commit per few thousand messages
  instead of one per round trip. A crash loses at most those rows: messages acknowledged by
  the subscriber in that time are delivered again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..engine.journal import (
    Change,
    DeliveryDeleted,
    DeliverySaved,
    InboundQos2Added,
    InboundQos2Released,
    RetainedDeleted,
    RetainedSaved,
    SessionDeleted,
    SessionSaved,
    StoredDelivery,
    StoredSession,
    SubscriptionDeleted,
    SubscriptionSaved,
)
from ..engine.serialize import pack_will, unpack_will
from ..engine.session import QUEUED, SubscriptionOptions
from ..engine.stats import SECONDS_BUCKETS, Histogram
from ..engine.store import StoredQueue, StoredState, StoreError, StoreWriteError
from ..message import Message
from .database_lock import lock_database
from .sqlite_rows import (
    BODY_COLUMNS,
    EITHER_BODY,
    INLINE_BODY,
    UPSERT_FLOW,
    message_columns,
    queue_rows,
    queued_deliveries,
    stored_message,
    subscription_ids_of,
)
from .sqlite_schema import check_integrity, create_private, migrate

SYNC_MODES = ("full", "normal")
# Unreferenced message bodies are swept after this many deletions, or half as many as there
# are bodies if that is more (a sweep scans them all; this keeps its cost per deletion
# constant), and at start-up.
_SWEEP_EVERY = 1000
# Bounds on the queue-row writes a turn with nothing owed may leave uncommitted.
_DEFER_ROWS = 4096
_DEFER_SECONDS = 1.0


class SQLiteStore:
    queues_on_disk = True

    def __init__(self, path: str, sync: str = "full", max_size: int | None = None,
                 defer_seconds: float = _DEFER_SECONDS) -> None:
        """``max_size``: bytes the database may grow to; past it writes fail as on a full
        disk, and the broker stops acknowledging what it cannot store. ``defer_seconds``: how
        long writes nothing is owed for may wait for a commit (see the module docstring)."""
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        self.path = path
        # Checked first, so that no lock file is made beside a directory.
        if os.path.isdir(path):
            raise StoreError(f"cannot use {path}: it is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StoreError(f"cannot use {path}: there is no directory {directory}")
        self._lock_file = lock_database(path)
        try:
            create_private(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            check_integrity(self._db, path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # see the module docstring
            self._db.execute("PRAGMA busy_timeout=5000")
            migrate(self._db, path)
            if max_size is not None:
                page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
                self._db.execute(f"PRAGMA max_page_count={max(1, max_size // page_size)}")
        except sqlite3.Error as exc:
            self._release()
            raise StoreError(f"cannot use {path}: {exc}") from None
        except StoreError:
            self._release()
            raise
        self._in_transaction = False
        self._deletions = 0
        self._bodies = 0  # rows in the messages table, as far as this store wrote them
        self._sync_full = sync == "full"
        # A promised change is applied and not yet synced (see the module docstring).
        self._sync_due = True  # the schema, if this run created it
        # Monotonic time by which deferred queue-row writes are committed.
        self._deferred_until = 0.0
        self._defer_seconds = defer_seconds
        self._wal_fd: int | None = None
        # Commits and WAL fsyncs so far, for inspection and tests.
        self.commits = 0
        self.wal_syncs = 0
        # How long each commit took, its WAL fsync included (mqlite_store_commit_seconds).
        self.commit_seconds = Histogram(SECONDS_BUCKETS)
        # Queue rows changed since the last commit, by (client id, seq): the delivery to
        # write, or None to delete it. Written at the next commit, net of later changes, in
        # two batches; they may wait past their turn (see the module docstring).
        self._pending: dict[tuple[str, int], DeliverySaved | None] = {}
        # The highest seq among each session's waiting rows, so that queued() knows in one
        # lookup whether its range has any.
        self._pending_top: dict[str, int] = {}
        # Messages whose body was inserted in the open transaction: not stored if it rolls
        # back.
        self._new_bodies: list[Message] = []

    # -- the SessionStore protocol ---------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> None:
        """Write the turn's changes; commit, and sync if one is promised (module docstring)."""
        promised = False
        try:
            for change in changes:
                if change.promise:
                    promised = True
                _WRITERS[type(change)](self, change)
            if promised:
                self._sync_due = True
            # Commit what was promised, and unpromised writes outside the queue (a session
            # saved at its disconnect; not synced); queue rows alone wait within bounds.
            pending = self._pending
            if (self._sync_due or self._in_transaction
                    or (pending and (len(pending) >= _DEFER_ROWS
                                     or time.monotonic() >= self._deferred_until))):
                self.flush()
        except StoreWriteError:
            self._rollback()
            raise

    def flush(self) -> None:
        """Commit everything applied so far, what waited too; sync if something promised
        is among it."""
        try:
            if self._pending:
                self._apply_pending()
            if self._deletions >= max(_SWEEP_EVERY, self._bodies // 2):
                self._deletions = 0
                self._sweep()
            if not (self._in_transaction or self._sync_due):
                return
            started = time.perf_counter()
            if self._in_transaction:
                self._in_transaction = False
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise StoreWriteError(f"committing to {self.path} failed: {exc}") from None
                self.commits += 1
                self._new_bodies.clear()
            if self._sync_due:
                self._sync_due = False
                if self._sync_full:
                    self._sync_wal()
            self.commit_seconds.observe(time.perf_counter() - started)
        except StoreWriteError:
            self._rollback()
            raise

    def flush_deadline(self) -> float | None:
        """Monotonic time by which ``apply()`` must run again to bound what waits."""
        return self._deferred_until if self._pending else None

    def _rollback(self) -> None:
        """Forget the transaction and what waited; the bodies it inserted are not stored."""
        self._pending.clear()
        self._pending_top.clear()
        self._sync_due = False
        for message in self._new_bodies:
            message.store_id = None
        self._new_bodies.clear()
        if self._in_transaction:
            self._in_transaction = False
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            if not self._in_transaction:  # the turn's transaction opens at its first write
                self._db.execute("BEGIN")
                self._in_transaction = True
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreWriteError(f"writing {self.path} failed: {exc}") from None

    def _sync_wal(self) -> None:
        fd = self._wal_fd
        if fd is None or os.fstat(fd).st_nlink == 0:  # first use, or SQLite made a new WAL
            if fd is not None:
                os.close(fd)
            self._wal_fd = None
            try:
                fd = self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            except FileNotFoundError:
                return  # no WAL: every commit is in the database file, synced at checkpoint
        try:
            os.fdatasync(fd)
        except OSError as exc:
            raise StoreWriteError(f"syncing {self.path}-wal failed: {exc}") from None
        self.wal_syncs += 1

    def _apply_pending(self) -> None:
        """Write the waiting queue rows: a message queued for one session inline in its row
        (one INSERT), a body shared by several rows (fan-out, retained) once; acknowledged
        rows go in one range DELETE per run of consecutive seqs."""
        pending, self._pending = self._pending, {}
        self._pending_top.clear()
        rows = queue_rows(pending, self._message_id)
        try:
            if rows.referring or rows.inline or rows.singles or rows.runs:
                self._execute("SELECT 1")  # opens the transaction
            db = self._db
            if rows.referring:
                db.executemany(
                    "INSERT INTO queue (client_id, seq, message_id, qos, retain, packet_id, "
                    "state, subscription_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    f"{UPSERT_FLOW}", rows.referring)
            if rows.inline:
                db.executemany(
                    "INSERT INTO queue (client_id, seq, qos, retain, packet_id, state, "
                    "subscription_ids, topic, payload, message_qos, message_retain, "
                    "properties, expires_at, origin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                    f"?, ?, ?, ?, ?, ?, ?, ?) {UPSERT_FLOW}", rows.inline)
            if rows.singles:
                db.executemany("DELETE FROM queue WHERE client_id = ? AND seq = ?",
                               rows.singles)
            if rows.runs:
                db.executemany("DELETE FROM queue WHERE client_id = ? AND seq BETWEEN ? AND ?",
                               rows.runs)
        except sqlite3.Error as exc:
            raise StoreWriteError(f"writing {self.path} failed: {exc}") from None

    # -- one writer per kind of change -------------------------------------------------------

    def _save_session(self, change: SessionSaved) -> None:
        session = change.session
        self._execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(client_id) DO UPDATE "
            "SET protocol_version=excluded.protocol_version, "
            "expiry_interval=excluded.expiry_interval, will=excluded.will, "
            "will_delay=excluded.will_delay, disconnected_at=excluded.disconnected_at, "
            "connected_at=CASE WHEN excluded.disconnected_at IS NULL THEN excluded.connected_at "
            "ELSE sessions.connected_at END",
            (session.client_id, session.protocol_version, session.expiry_interval,
             pack_will(session.will), session.will_delay, time.time(),
             session.disconnected_at))

    def _delete_session(self, change: SessionDeleted) -> None:
        client_id = change.client_id
        for key in [key for key in self._pending if key[0] == client_id]:
            del self._pending[key]  # rows waiting for the session go with it
        for table in ("sessions", "subscriptions", "queue", "inbound_qos2"):
            self._execute(f"DELETE FROM {table} WHERE client_id = ?", (client_id,))
        self._deletions += 1

    def _save_subscription(self, change: SubscriptionSaved) -> None:
        options = change.options
        self._execute("INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (change.client_id, change.topic_filter, options.qos, options.no_local,
                       options.retain_as_published, options.retain_handling,
                       options.identifier))

    def _delete_subscription(self, change: SubscriptionDeleted) -> None:
        self._execute("DELETE FROM subscriptions WHERE client_id = ? AND topic_filter = ?",
                      (change.client_id, change.topic_filter))

    def _save_delivery(self, change: DeliverySaved) -> None:
        """Queue rows wait in memory, net of later changes to them, until the next commit."""
        pending = self._pending
        if not pending:  # the first one starts the clock
            self._deferred_until = time.monotonic() + self._defer_seconds
        pending[(change.client_id, change.seq)] = change
        if change.seq > self._pending_top.get(change.client_id, -1):
            self._pending_top[change.client_id] = change.seq

    def _delete_delivery(self, change: DeliveryDeleted) -> None:
        pending = self._pending
        if not pending:
            self._deferred_until = time.monotonic() + self._defer_seconds
        pending[(change.client_id, change.seq)] = None
        if change.seq > self._pending_top.get(change.client_id, -1):
            self._pending_top[change.client_id] = change.seq
        self._deletions += 1

    def _add_inbound_qos2(self, change: InboundQos2Added) -> None:
        self._execute("INSERT OR IGNORE INTO inbound_qos2 VALUES (?, ?)",
                      (change.client_id, change.packet_id))

    def _release_inbound_qos2(self, change: InboundQos2Released) -> None:
        self._execute("DELETE FROM inbound_qos2 WHERE client_id = ? AND packet_id = ?",
                      (change.client_id, change.packet_id))

    def _save_retained(self, change: RetainedSaved) -> None:
        message = change.message
        self._execute("INSERT OR REPLACE INTO retained VALUES (?, ?)",
                      (message.topic, self._message_id(message)))
        self._deletions += 1

    def _delete_retained(self, change: RetainedDeleted) -> None:
        self._execute("DELETE FROM retained WHERE topic = ?", (change.topic,))
        self._deletions += 1

    def _message_id(self, message: Message) -> int:
        """The body's row, inserted by the first change that refers to it."""
        if message.store_id is None:
            cursor = self._execute(
                "INSERT INTO messages (topic, payload, qos, retain, properties, expires_at, "
                "origin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", message_columns(message))
            assert cursor.lastrowid is not None
            message.store_id = cursor.lastrowid
            self._new_bodies.append(message)
            self._bodies += 1
        return message.store_id

    def _sweep(self) -> None:
        """Drop message bodies no queue row or retained topic refers to any more (after the
        waiting queue rows are applied, so that it sees them)."""
        swept = self._execute("DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM "
                              "queue) AND id NOT IN (SELECT message_id FROM retained)")
        self._bodies = max(0, self._bodies - swept.rowcount)

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> StoredState:
        self._sweep()
        self.flush()
        db = self._db
        self._bodies = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        offset = time.monotonic() - time.time()  # wall clock -> monotonic
        state = StoredState()
        messages: dict[int, Message] = {}

        def message(message_id: int) -> Message:
            found = messages.get(message_id)
            if found is None:
                row = db.execute(f"SELECT {BODY_COLUMNS} FROM messages m WHERE m.id = ?",
                                 (message_id,)).fetchone()
                found = messages[message_id] = stored_message(message_id, *row, offset=offset)
            return found

        for row in db.execute("SELECT client_id, protocol_version, expiry_interval, will, "
                              "will_delay, disconnected_at FROM sessions"):
            client_id, version, expiry, will, will_delay, disconnected_at = row
            state.sessions[client_id] = StoredSession(
                client_id=client_id, protocol_version=version, expiry_interval=expiry,
                will=unpack_will(will), will_delay=will_delay, disconnected_at=disconnected_at)
        for row in db.execute("SELECT * FROM subscriptions"):
            client_id, topic_filter, qos, no_local, rap, handling, identifier = row
            state.subscriptions.setdefault(client_id, {})[topic_filter] = SubscriptionOptions(
                qos=qos, no_local=bool(no_local), retain_as_published=bool(rap),
                retain_handling=handling, identifier=identifier)
        # In flight: every one, as resuming a session resends them all. Queued: only how
        # many, as the broker reads them back a batch at a time (queued()).
        for row in db.execute(
                "SELECT q.client_id, q.seq, q.message_id, q.qos, q.retain, q.packet_id, "
                f"q.state, q.subscription_ids, {INLINE_BODY} FROM queue q "
                "WHERE q.state != ? ORDER BY q.client_id, q.seq", (QUEUED,)):
            client_id, seq, message_id, qos, retain, packet_id, delivery_state, ids = row[:8]
            body = message(message_id) if message_id is not None \
                else stored_message(None, *row[8:], offset=offset)  # inline
            state.deliveries.setdefault(client_id, {})[seq] = StoredDelivery(
                seq=seq, message=body, qos=qos, retain=bool(retain), packet_id=packet_id,
                state=delivery_state, subscription_ids=subscription_ids_of(ids))
        for client_id, count, size, first, last in db.execute(
                "SELECT q.client_id, count(*), sum(length(coalesce(m.payload, q.payload)) "
                "+ length(coalesce(m.topic, q.topic))), min(q.seq), max(q.seq) FROM queue q "
                "LEFT JOIN messages m ON m.id = q.message_id WHERE q.state = ? "
                "GROUP BY q.client_id", (QUEUED,)):
            state.queues[client_id] = StoredQueue(count=count, bytes=size or 0, first_seq=first,
                                                  last_seq=last)
        for client_id, packet_id in db.execute("SELECT * FROM inbound_qos2"):
            state.inbound_qos2.setdefault(client_id, set()).add(packet_id)
        for topic, message_id in db.execute("SELECT * FROM retained"):
            state.retained[topic] = message(message_id)
        return state

    def queued(self, client_id: str, from_seq: int, limit: int) -> list[StoredDelivery]:
        """One indexed range read of the session's queue. Rows waiting to be written in that
        range are written first, in the turn's transaction, so that the read sees them (rarely:
        rows wait only for deliveries already read back and sent)."""
        if self._pending_top.get(client_id, -1) >= from_seq:
            self._apply_pending()
        try:
            rows = self._db.execute(
                "SELECT q.seq, q.qos, q.retain, q.packet_id, q.state, q.subscription_ids, "
                f"q.message_id, {EITHER_BODY} FROM queue q LEFT JOIN messages m "
                "ON m.id = q.message_id WHERE q.client_id = ? AND q.seq >= ? AND q.state = ? "
                "ORDER BY q.seq LIMIT ?", (client_id, from_seq, QUEUED, limit)).fetchall()
        except sqlite3.Error as exc:
            raise StoreWriteError(f"reading {self.path} failed: {exc}") from None
        return queued_deliveries(rows, time.monotonic() - time.time())

    def close(self) -> None:
        """Commit what is pending, fold the WAL back into the database, release the lock."""
        with contextlib.suppress(sqlite3.Error, StoreWriteError):
            self.flush()
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self._release()

    def abandon(self) -> None:
        """Let go as a killed process would: the open transaction and what waited are not
        committed; the file stays as the last commit left it (SQLite recovers its WAL at the
        next open)."""
        self._pending.clear()
        self._pending_top.clear()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()  # an open transaction is rolled back, never committed
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()


# The writer of each kind of change.
_WRITERS: dict[type[Change], Callable[[SQLiteStore, Any], None]] = {
    SessionSaved: SQLiteStore._save_session,
    SessionDeleted: SQLiteStore._delete_session,
    SubscriptionSaved: SQLiteStore._save_subscription,
    SubscriptionDeleted: SQLiteStore._delete_subscription,
    DeliverySaved: SQLiteStore._save_delivery,
    DeliveryDeleted: SQLiteStore._delete_delivery,
    InboundQos2Added: SQLiteStore._add_inbound_qos2,
    InboundQos2Released: SQLiteStore._release_inbound_qos2,
    RetainedSaved: SQLiteStore._save_retained,
    RetainedDeleted: SQLiteStore._delete_retained,
}
