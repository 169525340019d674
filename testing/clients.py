"""Clients for tests: mqlite's paho-compatible client run by a background thread, and its
asyncio client, each keeping what it received and able to wait for it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from mqlite.client import CallbackAPIVersion, Client, MQTTMessage, MQTTv5, MQTTv311
from mqlite.client.aio import AsyncClient
from mqlite.client.packettypes import PacketTypes
from mqlite.client.properties import Properties
from mqlite.client.settings import topic_matches_sub


def _listed(messages: Sequence[MQTTMessage], limit: int = 20) -> str:
    if not messages:
        return "  (none)"
    return "\n".join(f"  {m.topic!r} {bytes(m.payload)[:40]!r} qos={m.qos}"
                     for m in messages[-limit:])


def _first_matching(received: Sequence[MQTTMessage], topic_filter: str, count: int,
                    limit: float, deadline: float) -> list[MQTTMessage] | None:
    """The first ``count`` messages matching ``topic_filter`` if they are in; None to wait on;
    TimeoutError listing what did arrive once ``deadline`` has passed."""
    found = [m for m in received if topic_matches_sub(topic_filter, m.topic)]
    if len(found) >= count:
        return found[:count]
    if deadline - time.monotonic() <= 0:
        raise TimeoutError(f"{len(found)} of {count} message(s) on {topic_filter!r} within "
                           f"{limit} s; received:\n{_listed(received)}")
    return None


class TestClient:
    """A connected :class:`mqlite.client.Client` (paho-mqtt 2.x's API) whose network loop runs
    in a background thread. ``received`` holds every message it got; :meth:`wait_for` waits
    for some. Any other attribute is the client's (``on_message``, ``will_set``, ...)."""

    __test__ = False

    def __init__(self, address: Iterable[Any], client_id: str = "", version: int = 4,
                 clean: bool = True, keepalive: int = 60, timeout: float = 5.0,
                 session_expiry: int | None = None) -> None:
        """``clean=False``: a session that outlives the connection (MQTT 5: for
        ``session_expiry`` seconds, an hour unless given)."""
        host, port = address
        protocol = MQTTv5 if version == 5 else MQTTv311
        self.client = Client(CallbackAPIVersion.VERSION2, client_id,
                             clean_session=None if version == 5 else clean, protocol=protocol)
        self.received: list[MQTTMessage] = []
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self._acks: dict[int, threading.Event] = {}
        self.timeout = timeout
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_ack
        self.client.on_unsubscribe = self._on_ack
        connect: dict[str, Any] = {"keepalive": keepalive}
        if version == 5:
            connect["clean_start"] = clean
            expiry = session_expiry if session_expiry is not None else 0 if clean else 3600
            if expiry:
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = expiry
                connect["properties"] = properties
        self.client.connect(host, port, **connect)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.close()
            raise TimeoutError(f"no CONNACK from {host}:{port} within {timeout} s")

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        with self._changed:
            self.received.append(message)
            self._changed.notify_all()

    def _on_ack(self, client: Client, userdata: Any, mid: int, *rest: Any) -> None:
        self._acks.setdefault(mid, threading.Event()).set()

    def subscribe(self, topic: str, qos: int = 0) -> None:
        """Subscribe, and return once the SUBACK is in."""
        _, mid = self.client.subscribe(topic, qos)
        self._await_ack(mid, f"SUBACK for {topic!r}")

    def unsubscribe(self, topic: str) -> None:
        _, mid = self.client.unsubscribe(topic)
        self._await_ack(mid, f"UNSUBACK for {topic!r}")

    def _await_ack(self, mid: int | None, what: str) -> None:
        if mid is None:
            raise RuntimeError(f"no {what}: the client is not connected")
        event = self._acks.setdefault(mid, threading.Event())
        if not event.wait(self.timeout):
            raise TimeoutError(f"no {what} within {self.timeout} s")
        self._acks.pop(mid, None)

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                retain: bool = False) -> None:
        """Publish, and return once it is sent (QoS 0) or acknowledged (QoS 1 and 2)."""
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise TimeoutError(f"{topic!r} (QoS {qos}) not acknowledged within {self.timeout} s")

    def wait_for(self, topic_filter: str = "#", count: int = 1,
                 timeout: float | None = None) -> list[MQTTMessage]:
        """The first ``count`` received messages on topics matching ``topic_filter``, waiting
        for them (TimeoutError listing what did arrive)."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._changed:
            while (found := _first_matching(self.received, topic_filter, count, limit,
                                     deadline)) is None:
                self._changed.wait(deadline - time.monotonic())
            return found

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        if self.client.is_connected():
            self.client.disconnect()
        self.client.loop_stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTestClient:
    """A connected :class:`mqlite.client.aio.AsyncClient` that keeps what it received (a
    task reads its messages); :meth:`wait_for` waits for some."""

    __test__ = False

    def __init__(self, address: Iterable[Any], client_id: str = "", version: int = 4,
                 timeout: float = 5.0, **options: Any) -> None:
        host, port = address
        self.client = AsyncClient(host, port, client_id=client_id,
                                  protocol=MQTTv5 if version == 5 else MQTTv311,
                                  timeout=timeout, **options)
        self.received: list[MQTTMessage] = []
        self.timeout = timeout
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> AsyncTestClient:
        await self.client.connect()
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self.client.messages():
            self.received.append(message)
            self._arrived.set()

    async def subscribe(self, topic: str, qos: int = 0) -> None:
        await self.client.subscribe(topic, qos)

    async def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                      retain: bool = False) -> None:
        await self.client.publish(topic, payload, qos, retain)

    async def wait_for(self, topic_filter: str = "#", count: int = 1,
                       timeout: float | None = None) -> list[MQTTMessage]:
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while (found := _first_matching(self.received, topic_filter, count, limit,
                                 deadline)) is None:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
        return found

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.client.disconnect()

    async def __aenter__(self) -> AsyncTestClient:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
