"""What SQLite itself allows for durable QoS 1 on this machine, without the broker: each message
is written in one commit and removed in the next (its acknowledgement), WAL, every commit
synced (the store's "full": synchronous=NORMAL plus an fdatasync of the WAL).

    python -m bench.sqlite_bound [--messages 100000] [--per-commit 1,10,100,1000]

Two layouts, messages per second (each one inserted, committed, deleted, committed):
- "body + row": a body row and a queue row referring to it; deleting costs the queue row and
  the body (the store's layout before schema 2);
- "inline + range": the message inline in its queue row; the acknowledged rows go in one
  range DELETE per commit (schema 2 for a message queued for one session).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time

PAYLOAD = b"x" * 64


def _open(path: str) -> tuple[sqlite3.Connection, int]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB)")
    db.execute("CREATE TABLE queue (client_id TEXT, seq INTEGER, message_id INTEGER, "
               "topic TEXT, payload BLOB, state INTEGER, PRIMARY KEY (client_id, seq))")
    db.execute("CREATE INDEX queue_message ON queue (message_id)")
    db.execute("BEGIN")
    db.execute("COMMIT")
    return db, os.open(f"{path}-wal", os.O_RDONLY)


def _commit(db: sqlite3.Connection, wal: int) -> None:
    db.execute("COMMIT")
    os.fdatasync(wal)


def body_and_row(db: sqlite3.Connection, wal: int, messages: int, per_commit: int) -> None:
    previous: list[tuple[int, int]] = []
    for start in range(0, messages, per_commit):
        db.execute("BEGIN")
        current = []
        for seq in range(start, min(start + per_commit, messages)):
            body = db.execute("INSERT INTO messages (topic, payload) VALUES ('t', ?)",
                              (PAYLOAD,)).lastrowid
            assert body is not None
            db.execute("INSERT INTO queue VALUES ('c', ?, ?, NULL, NULL, 1)", (seq, body))
            current.append((seq, body))
        db.executemany("DELETE FROM queue WHERE client_id = 'c' AND seq = ?",
                       [(seq,) for seq, _ in previous])
        db.executemany("DELETE FROM messages WHERE id = ?", [(body,) for _, body in previous])
        _commit(db, wal)
        previous = current


def inline_and_range(db: sqlite3.Connection, wal: int, messages: int, per_commit: int) -> None:
    previous: range | None = None
    for start in range(0, messages, per_commit):
        db.execute("BEGIN")
        current = range(start, min(start + per_commit, messages))
        db.executemany("INSERT INTO queue VALUES ('c', ?, NULL, 't', ?, 1)",
                       [(seq, PAYLOAD) for seq in current])
        if previous is not None:
            db.execute("DELETE FROM queue WHERE client_id = 'c' AND seq BETWEEN ? AND ?",
                       (previous.start, previous.stop - 1))
        _commit(db, wal)
        previous = current


def measure(pattern: str, messages: int, per_commit: int) -> float:
    run = body_and_row if pattern == "body + row" else inline_and_range
    with tempfile.TemporaryDirectory(dir=os.environ.get("MQLITE_BENCH_DIR")) as folder:
        db, wal = _open(os.path.join(folder, "bound.db"))
        started = time.perf_counter()
        run(db, wal, messages, per_commit)
        elapsed = time.perf_counter() - started
        os.close(wal)
        db.close()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--per-commit", default="1,10,100,1000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.per_commit.split(",")]
    print(f"{args.messages:,} messages of {len(PAYLOAD)} bytes; messages/s (best of 3)")
    print(f"{'per commit':>10} | {'body + row':>12} | {'inline + range':>14} | ratio")
    for size in sizes:
        count = min(args.messages, size * 2000)  # a bounded run where each commit syncs
        body = max(measure("body + row", count, size) for _ in range(3))
        inline = max(measure("inline + range", count, size) for _ in range(3))
        print(f"{size:>10} | {body:>12,.0f} | {inline:>14,.0f} | {inline / body:.2f}x")


if __name__ == "__main__":
    main()
