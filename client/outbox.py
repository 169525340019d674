"""The durable outbox: outgoing QoS 1/2 messages and their in-flight state in SQLite, so a
message ``publish()`` accepted survives a crash of the client process. The client's only
sqlite3 code.

A row is committed before ``publish()`` returns. Whether a PUBLISH went out (so a resend carries
DUP) and whether PUBREC came back (so PUBREL is what to resend) are recorded as they happen; the
row is deleted when the flow completes. WAL with ``synchronous=NORMAL`` by default: a committed
row survives the process being killed; ``sync="full"`` also survives power loss, at one fsync
per publish.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass

from mqlite.protocol import EMPTY_PROPERTIES, PacketType, Properties
from mqlite.protocol.properties import decode_properties, encode_properties
from mqlite.protocol.qos_flow import FlowState

# Version 2 stores the protocol's FlowState values (the broker's too); version 1 had its own:
# 0 queued, 1 PUBLISH sent (either QoS), 2 PUBREC received.
SCHEMA_VERSION = 2
_FROM_VERSION_1 = ("UPDATE outbox SET state = CASE WHEN state = 2 THEN 3 "
                   "WHEN state = 1 AND qos = 2 THEN 2 ELSE state END")
SYNC_MODES = ("normal", "full")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    mid INTEGER NOT NULL,
    packet_id INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    properties BLOB,
    state INTEGER NOT NULL,
    PRIMARY KEY (client_id, seq)
);
"""


class OutboxError(Exception):
    """The outbox file cannot be used."""


@dataclass(slots=True)
class StoredMessage:
    seq: int
    mid: int
    packet_id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties
    state: FlowState


class Outbox:
    def __init__(self, path: str, client_id: str, sync: str = "normal") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        if not client_id:
            raise ValueError("a durable outbox needs a client id that stays the same")
        self.client_id = client_id
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] == 1:
                with self._db:  # one transaction: states and version change together
                    self._db.execute("BEGIN")
                    self._db.execute(_FROM_VERSION_1)
                    self._db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise OutboxError(f"{path} has outbox schema {row[0]}, this code knows "
                                  f"{SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot use {path} as an outbox: {exc}") from None
        self._in_transaction = False

    def load(self) -> list[StoredMessage]:
        """This client's unfinished messages, oldest first."""
        rows = self._db.execute(
            "SELECT seq, mid, packet_id, topic, payload, qos, retain, properties, state"
            " FROM outbox"
            " WHERE client_id = ? ORDER BY seq", (self.client_id,)
        ).fetchall()
        return [
            StoredMessage(seq, mid, packet_id, topic, bytes(payload), qos, bool(retain),
                          decode_properties(props, 0, PacketType.PUBLISH)[0]
                          if props else EMPTY_PROPERTIES, FlowState(state))
            for seq, mid, packet_id, topic, payload, qos, retain, props, state in rows
        ]

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        if not self._in_transaction:
            self._db.execute("BEGIN")
            self._in_transaction = True
        self._db.execute(sql, args)

    def add(self, seq: int, mid: int, topic: str, payload: bytes, qos: int, retain: bool,
            properties: Properties) -> None:
        props = (None if properties is EMPTY_PROPERTIES
                 else encode_properties(properties, PacketType.PUBLISH))
        self._write(
            "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
            (self.client_id, seq, mid, topic, payload, qos, int(retain), props,
             FlowState.QUEUED),
        )

    def set_state(self, seq: int, state: int, packet_id: int) -> None:
        self._write("UPDATE outbox SET state = ?, packet_id = ? WHERE client_id = ? AND seq = ?",
                    (state, packet_id, self.client_id, seq))

    def remove(self, seq: int) -> None:
        self._write("DELETE FROM outbox WHERE client_id = ? AND seq = ?", (self.client_id, seq))

    def commit(self) -> None:
        if self._in_transaction:
            self._in_transaction = False
            self._db.execute("COMMIT")

    def close(self) -> None:
        self.commit()
        self._db.close()
