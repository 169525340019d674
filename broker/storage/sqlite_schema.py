"""The SQLite store's file and schema: created private, checked, and migrated to this
version's tables (idempotent steps, the version written last)."""

from __future__ import annotations

import contextlib
import os
import sqlite3

from ..engine.store import StoreError

# 2: a message queued for one session is stored inline in its queue row (INLINE_COLUMNS).
SCHEMA_VERSION = 2
# A queue row's own copy of its message, when no other row shares it (message_id is NULL).
INLINE_COLUMNS = {"topic": str, "payload": bytes, "message_qos": int, "message_retain": int,
                  "properties": bytes, "expires_at": float, "origin": str, "created_at": float}


def create_private(path: str) -> None:
    """Create the database file with mode 0600 (CVE-2017-9868: a world-readable store)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def check_integrity(db: sqlite3.Connection, path: str) -> None:
    try:
        result = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable SQLite database: {exc}") from None
    if result != "ok":
        raise StoreError(f"{path} failed its integrity check: {result}")


def migrate(connection: sqlite3.Connection, path: str) -> None:
    # Imported here: it takes a fifth of a second (it loads numpy where installed), which
    # every process that never opens a database (the CLI's clients, in-memory brokers)
    # would pay at start.
    import sqlite_utils

    db = sqlite_utils.Database(connection)
    if "schema_version" in db.table_names():
        found = connection.execute("SELECT version FROM schema_version").fetchone()
        if found and found[0] > SCHEMA_VERSION:
            raise StoreError(f"{path} has schema version {found[0]}, newer than this "
                             f"mqlite ({SCHEMA_VERSION}): upgrade mqlite")
        if found and found[0] == SCHEMA_VERSION:
            return
    # Idempotent steps, the version written last: a crash part-way just runs them again.
    db.table("schema_version").create({"version": int}, if_not_exists=True)
    db.table("sessions").create({
        "client_id": str, "protocol_version": int, "expiry_interval": int,
        "will": bytes, "will_delay": int, "connected_at": float,
        "disconnected_at": float}, pk="client_id", if_not_exists=True)
    db.table("subscriptions").create({
        "client_id": str, "topic_filter": str, "qos": int, "no_local": int,
        "retain_as_published": int, "retain_handling": int, "identifier": int},
        pk=("client_id", "topic_filter"), if_not_exists=True)
    db.table("messages").create({
        "id": int, "topic": str, "payload": bytes, "qos": int, "retain": int,
        "properties": bytes, "expires_at": float, "origin": str, "created_at": float},
        pk="id", if_not_exists=True)
    db.table("queue").create({
        "client_id": str, "seq": int, "message_id": int, "qos": int, "retain": int,
        "packet_id": int, "state": int, "subscription_ids": str, **INLINE_COLUMNS},
        pk=("client_id", "seq"), if_not_exists=True)
    queue_columns = db.table("queue").columns_dict
    for name, kind in INLINE_COLUMNS.items():  # schema 1's queue, whose rows all refer
        if name not in queue_columns:
            db.table("queue").add_column(name, kind)
    db.table("inbound_qos2").create({"client_id": str, "packet_id": int},
                                    pk=("client_id", "packet_id"), if_not_exists=True)
    db.table("retained").create({"topic": str, "message_id": int}, pk="topic",
                                if_not_exists=True)
    db.table("queue").create_index(["message_id"], if_not_exists=True)
    db.table("retained").create_index(["message_id"], if_not_exists=True)
    connection.execute("DELETE FROM schema_version")
    connection.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
