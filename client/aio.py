"""An asyncio API on the same external-loop contract as everything else.

    async with AsyncClient("localhost", 1883, client_id="app") as client:
        await client.subscribe("sensors/#", qos=1)
        await client.publish("sensors/t", b"21.5", qos=1)   # returns once PUBACK is in
        async for message in client.messages():
            ...

The socket is opened in an executor (name lookup and TCP connect never block the event loop),
then driven with ``add_reader`` / ``add_writer`` and a keepalive task. A lost connection is
re-established with exponential backoff and jitter; the underlying client subscribes again when
the broker has no session, and resends unacknowledged messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import AsyncIterator
from typing import Any

from .client import Client
from .constants import (
    MQTT_ERR_SUCCESS,
    MQTT_LOG_WARNING,
    CallbackAPIVersion,
    MQTTv311,
    error_string,
)
from .message import MQTTMessage, MQTTMessageInfo
from .mqtt5_types import ConnectFlags, DisconnectFlags, Properties, ReasonCode, SubscribeOptions
from .payloads import pack_msgpack


class MqttError(Exception):
    """A request failed, or the client is not connected and will not reconnect."""


class MqttCodeError(MqttError):
    """The broker answered with a failure reason code."""

    def __init__(self, message: str, reason_code: int) -> None:
        super().__init__(f"{message} (reason code 0x{reason_code:02X})")
        self.reason_code = reason_code


class AsyncClient:
    def __init__(
        self,
        hostname: str = "localhost",
        port: int = 1883,
        *,
        client_id: str = "",
        protocol: int = MQTTv311,
        clean_session: bool | None = None,
        clean_start: int | None = None,
        keepalive: int = 60,
        username: str | None = None,
        password: str | None = None,
        will: tuple[str, Any, int, bool] | None = None,
        properties: Properties | None = None,
        reconnect: bool = True,
        reconnect_delay: tuple[float, float] = (0.5, 30.0),
        persistence: str | None = None,
        max_queued_incoming: int = 0,
        timeout: float = 10.0,
    ) -> None:
        self.client = Client(CallbackAPIVersion.VERSION2, client_id, clean_session,
                             protocol=protocol, reconnect_on_failure=False,
                             persistence=persistence)
        self.client.suppress_exceptions = True
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(*will)
        self._connect_args: dict[str, Any] = {"keepalive": keepalive, "properties": properties}
        if clean_start is not None:
            self._connect_args["clean_start"] = clean_start
        self.hostname, self.port = hostname, port
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._queue: asyncio.Queue[MQTTMessage] = asyncio.Queue(max_queued_incoming)
        self._connected: asyncio.Future[None] | None = None
        self._requests: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._misc_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closing = False
        self._on_closed: asyncio.Future[None] | None = None
        self.connection_count = 0
        self._install_callbacks()

    # ------------------------------------------------------------------ public
    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def connect(self) -> None:
        """Connect and wait for a successful CONNACK (``MqttCodeError`` if refused)."""
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._closing = False
        self.client.connect_async(self.hostname, self.port, **self._connect_args)
        await asyncio.wait_for(self._open_and_wait(), self.timeout)

    async def disconnect(self) -> None:
        """Send DISCONNECT once everything queued is written, and stop reconnecting."""
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        closed = self._new_future()
        self._on_closed = closed
        if self.client.disconnect() == MQTT_ERR_SUCCESS:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(closed, self.timeout)

    async def publish(self, topic: str, payload: Any = None, qos: int = 0,
                      retain: bool = False, properties: Properties | None = None) -> int:
        """Publish and return the message id once it is done: written (QoS 0), PUBACK (1) or
        PUBCOMP (2). While reconnecting the message waits in the client's queue."""
        info = self.client.publish(topic, payload, qos, retain, properties)
        done = self._new_future()

        def resolve() -> None:
            if not done.done():
                done.set_result(None)

        def finished(result: MQTTMessageInfo) -> None:
            self._threadsafe(resolve)

        info.add_done_callback(finished)
        await done
        if info.rc != MQTT_ERR_SUCCESS:
            raise MqttError(f"publish failed: {error_string(info.rc)}")
        if info.reason_code >= 0x80:
            raise MqttCodeError("the broker refused the message", info.reason_code)
        return info.mid

    async def publish_msgpack(self, topic: str, obj: Any, qos: int = 0,
                              retain: bool = False) -> int:
        payload, props = pack_msgpack(obj, None, self.client.protocol == 5)
        return await self.publish(topic, payload, qos, retain, props)

    async def subscribe(self, topic: Any, qos: int = 0, options: SubscribeOptions | None = None,
                        properties: Properties | None = None) -> list[ReasonCode]:
        """Subscribe and return the SUBACK's reason codes (granted QoS or failures)."""
        future: asyncio.Future[list[ReasonCode]] = self._new_future()
        with self.client._lock:
            _, mid = self.client.subscribe(topic, qos, options, properties)
            assert mid is not None
            self._requests[mid] = future
        return await future

    async def unsubscribe(self, topic: str | list[str],
                          properties: Properties | None = None) -> list[ReasonCode]:
        future: asyncio.Future[list[ReasonCode]] = self._new_future()
        with self.client._lock:
            _, mid = self.client.unsubscribe(topic, properties)
            assert mid is not None
            self._requests[mid] = future
        return await future

    async def messages(self) -> AsyncIterator[MQTTMessage]:
        """Received messages, in order, across reconnects, until the iterator is left."""
        while True:
            yield await self._queue.get()

    def is_connected(self) -> bool:
        return self.client.is_connected()

    # ------------------------------------------------------------- connection
    async def _open_and_wait(self) -> None:
        assert self._loop is not None
        self._connected = self._new_future()
        sock = await self._loop.run_in_executor(None, self.client.open_socket)
        self.client.attach_socket(sock)
        await self._connected

    async def _reconnect(self) -> None:
        low, high = self.reconnect_delay
        attempt = 0
        while not self._closing:
            delay = min(high, low * float(2 ** min(attempt, 30)))
            await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))
            attempt += 1
            try:
                await asyncio.wait_for(self._open_and_wait(), self.timeout)
                return
            except (TimeoutError, OSError, MqttError):
                continue

    async def _misc(self) -> None:
        while True:
            wait = self.client.next_timeout()
            if wait is None:
                return
            await asyncio.sleep(min(wait, 1.0))
            self.client.loop_misc()

    # ------------------------------------------------------------- callbacks
    def _install_callbacks(self) -> None:
        client = self.client
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_ack
        client.on_unsubscribe = self._on_ack

    def _threadsafe(self, action: Any) -> None:
        """Run ``action`` on the event loop's thread (publish may come from any thread)."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._thread_id:
            action()
        else:
            loop.call_soon_threadsafe(action)

    def _socket_open(self, client: Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock, client.loop_read)
        self._misc_task = self._loop.create_task(self._misc())

    def _socket_close(self, client: Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        if self._misc_task is not None:
            self._misc_task.cancel()

    def _register_write(self, client: Client, userdata: Any, sock: Any) -> None:
        self._threadsafe(lambda: self._add_writer(sock))

    def _add_writer(self, sock: Any) -> None:
        if self._loop is not None and sock.fileno() >= 0:
            self._loop.add_writer(sock, self.client.loop_write)

    def _unregister_write(self, client: Client, userdata: Any, sock: Any) -> None:
        self._threadsafe(lambda: self._remove_writer(sock))

    def _remove_writer(self, sock: Any) -> None:
        if self._loop is not None:
            self._loop.remove_writer(sock)

    def _on_connect(self, client: Client, userdata: Any, flags: ConnectFlags,
                    reason_code: ReasonCode, properties: Properties) -> None:
        future = self._connected
        if future is None or future.done():
            return
        if reason_code.is_failure:
            future.set_exception(MqttCodeError("connection refused", reason_code.value))
        else:
            self.connection_count += 1
            future.set_result(None)

    def _on_disconnect(self, client: Client, userdata: Any, flags: DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties) -> None:
        closed = self._on_closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(MqttError(f"connection lost: {reason_code}"))
            self._connected.exception()  # retrieved here when nobody awaits it
        if self._closing or not self.reconnect or self._loop is None:
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self._loop.create_task(self._reconnect())

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            client._log(MQTT_LOG_WARNING, "incoming queue full: dropped a message on %s",
                        message.topic)

    def _on_ack(self, client: Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                properties: Properties) -> None:
        future = self._requests.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(reason_codes)

    def _new_future(self) -> asyncio.Future[Any]:
        loop = self._loop or asyncio.get_running_loop()
        return loop.create_future()
