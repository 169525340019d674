"""The test broker and its clients leave nothing behind: no thread, no socket or other file
descriptor, no file, whatever faults a test used."""

from __future__ import annotations

import gc
import os
import tempfile
import threading
from pathlib import Path

from mqlite.testing import TestClient, broker


def open_descriptors() -> set[str]:
    return {f"{fd}:{os.readlink(f'/proc/self/fd/{fd}')}" for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}


def a_test_using_every_fault(database: str | None) -> None:
    with broker(db=database, clock="manual") as test_broker:
        with TestClient(test_broker, client_id="app") as app:
            app.subscribe("a/#", qos=1)
            with test_broker.withhold("app", packet="PUBACK"):
                app.client.publish("a/1", b"x", qos=1)
                test_broker.wait_for("a/1")
            test_broker.publish("a/2", "y", qos=1, retain=True)
            app.wait_for("a/#", count=2)
            with test_broker.store_fails(count=1), test_broker.refuse_connects(0x88):
                pass
            test_broker.advance(5)
        with TestClient(test_broker, client_id="silenced", version=5):
            test_broker.drop("silenced", how="silent")
            test_broker.restart()
        test_broker.kill()
        test_broker.start()


def test_nothing_is_left_behind(tmp_path: Path) -> None:
    a_test_using_every_fault(None)  # imports, and the interpreter's own first allocations
    gc.collect()  # what earlier tests left to the collector is not this test's to count
    threads = set(threading.enumerate())
    descriptors = open_descriptors()
    temporary = set(os.listdir(tempfile.gettempdir()))
    a_test_using_every_fault(None)
    database = tmp_path / "broker.db"
    a_test_using_every_fault(str(database))
    assert set(threading.enumerate()) - threads == set()
    assert open_descriptors() - descriptors == set()
    assert set(os.listdir(tempfile.gettempdir())) - temporary == set()
    assert {p.name for p in tmp_path.iterdir()} <= {"broker.db", "broker.db-wal",
                                                     "broker.db-shm", "broker.db.lock"}
