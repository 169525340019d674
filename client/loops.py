"""The built-in loops: ``loop()``, ``loop_forever()`` and ``loop_start()``/``loop_stop()``.

They drive the client through its public external-loop contract only (``socket()``,
``want_write()``, ``loop_read()``, ``loop_write()``, ``loop_misc()``, ``next_timeout()``,
``reconnect()``, ``add_write_waker()``; the reconnect settings), the way an application's own
loop would, with one waker so that a ``publish()`` from another thread interrupts the wait at
once. They reconnect with exponential backoff and jitter, and log exceptions raised in
callbacks instead of dying.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from . import transport
from .constants import MQTT_ERR_INVAL, MQTT_ERR_NO_CONN, MQTT_ERR_SUCCESS, MQTTErrorCode

_logger = logging.getLogger("mqlite.client")
# How long loop_stop() lets a pending disconnect() finish writing.
_STOP_FLUSH_SECONDS = 1.0


class LoopClient(Protocol):
    """What the built-in loops use of a client: its public contract."""

    host: str
    port: int
    opening: bool  # connect() is opening the connection on another thread
    suppress_exceptions: bool | None
    on_connect_fail: Callable[[Any, Any], None] | None

    @property
    def client_id(self) -> str: ...
    @property
    def reconnect_on_failure(self) -> bool: ...
    @property
    def reconnect_delays(self) -> tuple[float, float]: ...
    @property
    def disconnect_requested(self) -> bool: ...

    def socket(self) -> Any: ...
    def want_write(self) -> bool: ...
    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode: ...
    def loop_write(self) -> MQTTErrorCode: ...
    def loop_misc(self) -> MQTTErrorCode: ...
    def next_timeout(self) -> float | None: ...
    def reconnect(self) -> MQTTErrorCode: ...
    def is_connected(self) -> bool: ...
    def add_write_waker(self, wake: Callable[[], None]) -> None: ...
    def remove_write_waker(self, wake: Callable[[], None]) -> None: ...
    def user_data_get(self) -> Any: ...


class BuiltinLoop:
    """One client's built-in loop: its waker (made at first use), stop flag and thread."""

    def __init__(self, client: LoopClient) -> None:
        self.client = client
        self.stop_requested = threading.Event()
        # Set by connect*(): a loop_start() thread started before it waits for this.
        self.connect_requested = threading.Event()
        self.thread: threading.Thread | None = None
        self._poller: transport.Poller | None = None
        self._lock = threading.Lock()

    @property
    def poller(self) -> transport.Poller:
        with self._lock:
            if self._poller is None:
                self._poller = transport.Poller(transport.Waker())
                self.client.add_write_waker(self._poller.waker.wake)
            return self._poller

    def once(self, timeout: float = 1.0) -> MQTTErrorCode:
        """Wait up to ``timeout`` seconds for the socket, then read, write and run timers."""
        client = self.client
        poller = self.poller
        sock = client.socket()
        if sock is None:
            return MQTT_ERR_NO_CONN
        misc = client.next_timeout()
        wait = timeout if misc is None else min(timeout, misc)
        readable, _ = poller.wait(sock, client.want_write(), wait)
        rc = MQTT_ERR_SUCCESS
        if readable:
            rc = client.loop_read()
        # Try writing whenever bytes wait (acks queued just now, too): a full socket costs one
        # send() that returns nothing, an empty one a whole select() round saved.
        if rc == MQTT_ERR_SUCCESS and client.want_write():
            rc = client.loop_write()
        client.loop_misc()
        return rc

    def forever(self, timeout: float = 1.0, retry_first_connection: bool = False,
                wait_for_connect: bool = False) -> MQTTErrorCode:
        """Loop until ``disconnect()`` (or ``loop_stop()``), reconnecting when the connection
        is lost if the client was made with ``reconnect_on_failure``. Callback exceptions are
        logged, unless the application set ``suppress_exceptions``."""
        client = self.client
        suppressing = client.suppress_exceptions is None
        if suppressing:
            client.suppress_exceptions = True
        try:
            return self._run(timeout, retry_first_connection, wait_for_connect)
        finally:
            if suppressing:
                client.suppress_exceptions = None

    def _run(self, timeout: float, retry_first_connection: bool,
             wait_for_connect: bool) -> MQTTErrorCode:
        client = self.client
        backoff = _Backoff(client)
        first = True
        rc = MQTT_ERR_SUCCESS
        while not self.stop_requested.is_set():
            if client.socket() is None:
                if wait_for_connect and (not client.host or client.opening) \
                        and not client.disconnect_requested:
                    # loop_start() before connect*(), as paho allows: wait for it.
                    self.connect_requested.wait(timeout)
                    self.connect_requested.clear()
                    continue
                if client.disconnect_requested or not client.host:
                    return rc
                if not first and not client.reconnect_on_failure:
                    return rc
                if not first and self.stop_requested.wait(backoff.next_delay()):
                    break
                try:
                    client.reconnect()
                except OSError as exc:
                    _logger.debug("connecting to %s:%d failed: %s", client.host, client.port,
                                  exc)
                    self._connect_failed()
                    if first and not retry_first_connection:
                        raise
                    first = False
                    continue
            first = False
            rc = self.once(timeout)
            if client.is_connected():
                backoff.attempt = 0
        self._flush_disconnect()
        return rc

    def _connect_failed(self) -> None:
        callback = self.client.on_connect_fail
        if callback is None:
            return
        try:
            callback(self.client, self.client.user_data_get())
        except Exception as exc:
            _logger.error("Caught exception in callback: %s", exc, exc_info=exc)

    def _flush_disconnect(self) -> None:
        """On loop_stop(): let a disconnect() already queued reach the broker."""
        client = self.client
        deadline = time.monotonic() + _STOP_FLUSH_SECONDS
        while client.disconnect_requested and client.socket() is not None:
            if time.monotonic() >= deadline:
                break
            self.poller.wait(client.socket(), True, 0.05)
            client.loop_write()

    def start(self) -> MQTTErrorCode:
        """Run ``loop_forever(retry_first_connection=True)`` on a daemon thread."""
        if self.thread is not None and self.thread.is_alive():
            return MQTT_ERR_INVAL
        self.stop_requested.clear()
        self.poller  # noqa: B018 -- the waker exists before another thread publishes

        def target() -> None:
            try:
                self.forever(1.0, retry_first_connection=True, wait_for_connect=True)
            except Exception:
                _logger.exception("the client loop thread stopped")

        self.thread = threading.Thread(target=target,
                                       name=f"mqlite-client-{self.client.client_id}",
                                       daemon=True)
        self.thread.start()
        return MQTT_ERR_SUCCESS

    def stop(self) -> MQTTErrorCode:
        thread = self.thread
        if thread is None:
            return MQTT_ERR_INVAL
        self.stop_requested.set()
        self.connect_requested.set()
        self.poller.waker.wake()
        if thread is not threading.current_thread():
            thread.join()
            self._release()
        self.thread = None
        return MQTT_ERR_SUCCESS

    def _release(self) -> None:
        """Close the selector and the waker's sockets (made again if a loop runs again), so
        that a stopped client holds no file descriptor but its connection's."""
        with self._lock:
            poller, self._poller = self._poller, None
        if poller is not None:
            self.client.remove_write_waker(poller.waker.wake)
            poller.close()
            poller.waker.close()


class _Backoff:
    def __init__(self, client: LoopClient) -> None:
        self.client = client
        self.attempt = 0

    def next_delay(self) -> float:
        low, high = self.client.reconnect_delays
        delay = min(high, low * float(2 ** min(self.attempt, 30)))
        self.attempt += 1
        # "Equal jitter": between half and all of the delay, so reconnecting clients spread.
        return delay / 2 + random.uniform(0, delay / 2)
