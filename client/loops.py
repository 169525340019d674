"""The built-in loops: ``loop()``, ``loop_forever()`` and ``loop_start()``/``loop_stop()``.

They drive the client through its public external-loop contract (``socket()``,
``want_write()``, ``loop_read()``, ``loop_write()``, ``loop_misc()``, ``next_timeout()``) plus
one waker, so a ``publish()`` from another thread interrupts the wait at once. They reconnect
with exponential backoff and jitter, and log exceptions raised in callbacks instead of dying.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING

from . import transport
from .constants import MQTT_ERR_INVAL, MQTT_ERR_NO_CONN, MQTT_ERR_SUCCESS, MQTTErrorCode

if TYPE_CHECKING:
    from .client import Client

_logger = logging.getLogger("mqlite.client")
# How long loop_stop() lets a pending disconnect() finish writing.
_STOP_FLUSH_SECONDS = 1.0


class LoopState:
    """The waker, stop flag and thread of one client's built-in loop."""

    def __init__(self, client: Client) -> None:
        self.poller = transport.Poller(transport.Waker())
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        client._wakers.append(self.poller.waker.wake)


def _state(client: Client) -> LoopState:
    with client._lock:
        if client._loop_state is None:
            client._loop_state = LoopState(client)
        return client._loop_state


def run_once(client: Client, timeout: float = 1.0) -> MQTTErrorCode:
    """Wait up to ``timeout`` seconds for the socket, then read, write and run timers."""
    state = _state(client)
    sock = client.socket()
    if sock is None:
        return MQTT_ERR_NO_CONN
    misc = client.next_timeout()
    wait = timeout if misc is None else min(timeout, misc)
    readable, _ = state.poller.wait(sock, client.want_write(), wait)
    rc = MQTT_ERR_SUCCESS
    if readable:
        rc = client.loop_read()
    # Try writing whenever bytes wait (acks queued just now, too): a full socket costs one
    # send() that returns nothing, an empty one a whole select() round saved.
    if rc == MQTT_ERR_SUCCESS and client.want_write():
        rc = client.loop_write()
    client.loop_misc()
    return rc


class _Backoff:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.attempt = 0

    def next_delay(self) -> float:
        low, high = self.client._reconnect_delays
        delay = min(high, low * float(2 ** min(self.attempt, 30)))
        self.attempt += 1
        # "Equal jitter": between half and all of the delay, so reconnecting clients spread.
        return delay / 2 + random.uniform(0, delay / 2)


def run_forever(client: Client, timeout: float = 1.0, retry_first_connection: bool = False
                ) -> MQTTErrorCode:
    """Loop until ``disconnect()`` (or ``loop_stop()``), reconnecting when the connection is
    lost if the client was made with ``reconnect_on_failure``."""
    state = _state(client)
    backoff = _Backoff(client)
    first = True
    previous = client._builtin_loop
    client._builtin_loop = True
    rc = MQTT_ERR_SUCCESS
    try:
        while not state.stop.is_set():
            if client.socket() is None:
                if client._user_disconnected or not client.host:
                    return rc
                if not first and not client._reconnect_on_failure:
                    return rc
                if not first and state.stop.wait(backoff.next_delay()):
                    break
                try:
                    client.reconnect()
                except OSError as exc:
                    client._log(0x08, "connecting to %s:%d failed: %s", client.host,
                                client.port, exc)
                    client._run([lambda: client._call(client.on_connect_fail)])
                    if first and not retry_first_connection:
                        raise
                    first = False
                    continue
            first = False
            rc = run_once(client, timeout)
            if client.is_connected():
                backoff.attempt = 0
        _flush_disconnect(client, state)
        return rc
    finally:
        client._builtin_loop = previous


def _flush_disconnect(client: Client, state: LoopState) -> None:
    """On loop_stop(): let a disconnect() already queued reach the broker."""
    deadline = time.monotonic() + _STOP_FLUSH_SECONDS
    while client._conn.disconnecting and client.socket() is not None:
        if time.monotonic() >= deadline:
            break
        state.poller.wait(client.socket(), True, 0.05)
        client.loop_write()


def start_thread(client: Client) -> MQTTErrorCode:
    """Run ``loop_forever(retry_first_connection=True)`` on a daemon thread."""
    state = _state(client)
    if state.thread is not None and state.thread.is_alive():
        return MQTT_ERR_INVAL
    state.stop.clear()

    def target() -> None:
        try:
            run_forever(client, 1.0, retry_first_connection=True)
        except Exception:
            _logger.exception("the client loop thread stopped")

    state.thread = threading.Thread(target=target, name=f"mqlite-client-{client.client_id}",
                                    daemon=True)
    state.thread.start()
    return MQTT_ERR_SUCCESS


def stop_thread(client: Client) -> MQTTErrorCode:
    state = _state(client)
    thread = state.thread
    if thread is None:
        return MQTT_ERR_INVAL
    state.stop.set()
    state.poller.waker.wake()
    if thread is not threading.current_thread():
        thread.join()
    state.thread = None
    return MQTT_ERR_SUCCESS
