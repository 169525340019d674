"""One broker per database: an advisory lock on a file beside it (``NAME.lock``, mode 0600),
released when the last process holding it ends, even by ``kill -9``. ``mqlite broker
--workers`` takes it in the supervisor and hands it down to every process it starts, so the
database stays taken while any of them lives."""

from __future__ import annotations

import fcntl
import os
from typing import TextIO

from ..engine.store import StoreError


def lock_database(path: str) -> TextIO:
    """The open lock file (kept open for as long as the database is in use); StoreError if
    another process holds it."""
    try:
        descriptor = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot use {path}: {exc.strerror} (creating {path}.lock)") from None
    lock = os.fdopen(descriptor, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise StoreError(f"{path} is in use by another mqlite broker (pid {holder})") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock
