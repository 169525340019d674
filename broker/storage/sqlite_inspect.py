"""Read-only inspection of a broker's SQLite database (``mqlite sessions``), safe while a
broker runs: it never writes, and reads only what was committed."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from typing import Any

from ..engine.session_summary import SessionSummary
from ..engine.store import StoreError


def _open_read_only(path: str) -> sqlite3.Connection:
    if not os.path.exists(path):
        raise StoreError(f"{path} does not exist")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("SELECT version FROM schema_version").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    return db


def broker_running(path: str) -> bool:
    """Whether a broker holds the database's lock."""
    try:
        with open(f"{path}.lock") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def read_sessions(path: str) -> list[SessionSummary]:
    db = _open_read_only(path)
    running = broker_running(path)
    rows = db.execute(
        "SELECT s.client_id, s.disconnected_at, s.protocol_version, s.expiry_interval, "
        "(SELECT count(*) FROM subscriptions WHERE client_id = s.client_id), "
        "(SELECT count(*) FROM queue WHERE client_id = s.client_id), "
        "(SELECT min(coalesce(m.created_at, q.created_at)) FROM queue q "
        " LEFT JOIN messages m ON m.id = q.message_id WHERE q.client_id = s.client_id), "
        "coalesce(s.disconnected_at, s.connected_at) "
        "FROM sessions s ORDER BY s.client_id").fetchall()
    db.close()
    return [SessionSummary(client_id=r[0], online=running and r[1] is None,
                           protocol_version=r[2], expiry_interval=r[3], subscriptions=r[4],
                           queued=r[5], oldest_queued_at=r[6], last_seen=r[7]) for r in rows]


def read_session(path: str, client_id: str) -> tuple[SessionSummary, list[dict[str, Any]],
                                                     list[dict[str, Any]]] | None:
    """A session's summary, subscriptions and queued messages; None if there is none."""
    summary = next((s for s in read_sessions(path) if s.client_id == client_id), None)
    if summary is None:
        return None
    db = _open_read_only(path)
    db.row_factory = sqlite3.Row
    subscriptions = [dict(row) for row in db.execute(
        "SELECT topic_filter, qos, no_local, retain_as_published, retain_handling, identifier "
        "FROM subscriptions WHERE client_id = ? ORDER BY topic_filter", (client_id,))]
    queue = [dict(row) for row in db.execute(
        "SELECT q.seq, coalesce(m.topic, q.topic) AS topic, q.qos, q.packet_id, q.state, "
        "length(coalesce(m.payload, q.payload)) AS bytes, "
        "coalesce(m.created_at, q.created_at) AS created_at FROM queue q "
        "LEFT JOIN messages m ON m.id = q.message_id "
        "WHERE q.client_id = ? ORDER BY q.seq", (client_id,))]
    db.close()
    return summary, subscriptions, queue
