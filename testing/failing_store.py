"""A session store that fails on demand: the test broker's store (SQLite or memory) behind a
switch, so that a test sees what its clients see when the broker's disk is full."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from mqlite.broker import SessionStore, StoreWriteError
from mqlite.broker.engine.journal import Change, StoredDelivery
from mqlite.broker.engine.store import StoredState


class FailingStore:
    """Forwards to ``inner``, except that while failing each commit with something to write
    raises StoreWriteError (and writes nothing of it), as a full disk would."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.queues_on_disk = inner.queues_on_disk
        self._lock = threading.Lock()
        self._failures: int | None = 0  # commits left to fail; None: every one
        self.failed = 0  # commits failed so far

    def fail(self, count: int | None) -> None:
        """Fail the next ``count`` commits (None: every one until :meth:`recover`)."""
        with self._lock:
            self._failures = count

    def recover(self) -> None:
        with self._lock:
            self._failures = 0

    def _failing(self) -> bool:
        with self._lock:
            if self._failures is None:
                return True
            if self._failures > 0:
                self._failures -= 1
                return True
            return False

    def load(self) -> StoredState:
        return self.inner.load()

    def queued(self, client_id: str, from_seq: int, limit: int) -> list[StoredDelivery]:
        return self.inner.queued(client_id, from_seq, limit)

    def apply(self, changes: Sequence[Change]) -> None:
        if changes and self._failing():
            self.failed += 1
            raise StoreWriteError("database or disk is full (mqlite.testing: store_fails)")
        self.inner.apply(changes)

    def flush(self) -> None:
        self.inner.flush()

    def flush_deadline(self) -> float | None:
        return self.inner.flush_deadline()

    def close(self) -> None:
        self.inner.close()

    def abandon(self) -> None:
        self.inner.abandon()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # what reports read of a store (commit latency)
