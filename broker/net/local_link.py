"""An in-process connection into the broker: a bridge's local side. It holds a persistent MQTT 5
session like any client's (its subscriptions, queue and in-flight messages in the store), but
no socket: packets from the bridge are handled as if read from one, and what the broker sends
it is read back as packets, once the turn that produced them has committed.

So the durability contract holds across a bridge as it does for a client: a message the
broker sends the bridge stays in the session (on disk) until the bridge acknowledges it, and
the broker acknowledges a message from the bridge only once it is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mqlite.protocol import MQTTError, Packet, PacketReader

from ..engine.connection import Connection
from ..engine.core import BrokerCore
from ..engine.handlers.connect import attach_internal

log = logging.getLogger("mqlite.broker")


class _Pipe:
    """Stands in for the socket: the event loop's flush writes into it (always all of it),
    and the bytes are read back as packets for the bridge."""

    __slots__ = ("_deliver", "_reader")

    def __init__(self, deliver: Callable[[list[Packet]], None]) -> None:
        self._reader = PacketReader("client", version=5)  # reads what a server sends
        self._deliver = deliver

    def send(self, data: bytes) -> int:
        packets = list(self._reader.feed(data))
        if packets:
            self._deliver(packets)
        return len(data)

    def fileno(self) -> int:
        return -1  # never registered with the selector

    def shutdown(self, how: int) -> None:
        # The loop half-closes a socket and lingers for the peer's end of stream; in-process
        # there is no peer to wait for, and this error makes the loop close it at once.
        raise OSError("an in-process connection closes at once")

    def close(self) -> None:
        pass


class LocalLink:
    """One bridge's session in this broker. ``receive(packets)`` is called with what the
    broker sent, on the loop's thread at the start of a later turn (``post`` schedules it)."""

    def __init__(self, core: BrokerCore, client_id: str, name: str, window: int,
                 receive: Callable[[list[Packet]], None],
                 post: Callable[[Callable[[], None]], None]) -> None:
        self._core = core
        self.client_id = client_id
        self._name = name
        self.window = window  # QoS 1/2 messages in flight to the bridge, at the next open()
        self._receive = receive
        self._post = post
        self._waiting: list[Packet] = []
        self.conn: Connection | None = None
        core.sessions.internal.add(client_id)  # no client may take it
        core.hooks.trusted.add(client_id)  # what it carries passes the access checks

    def open(self, now: float) -> None:
        """Attach the session (resending what it had in flight, then its queue)."""
        if self.conn is not None and self.conn.open:
            return
        core = self._core
        conn = core.new_connection(_Pipe(self._arrived), f"bridge:{self._name}", now,
                                   f"bridge:{self._name}")
        core.deadlines.forget(conn)  # no connect timeout, no keep alive
        conn.own_negotiated().receive_maximum = self.window
        self.conn = conn
        attach_internal(core, conn, self.client_id, now)

    def send(self, packet: Packet, now: float) -> None:
        """Hand the broker one packet, as if the bridge's session had sent it."""
        conn = self.conn
        if conn is None or not conn.open:
            return
        core = self._core
        core.handled.add(conn)
        try:
            core.handle_packet(conn, packet, now)
        except MQTTError as error:  # a bug in the bridge: logged, its session goes on
            log.error("bridge %s sent its local session a bad %s: %s", self._name,
                      type(packet).__name__, error)

    def close(self, reason: str) -> None:
        """Detach the session (it stays, with its queue, for the next start)."""
        conn, self.conn = self.conn, None
        if conn is not None and conn.open:
            self._core.drop(conn, reason)

    def _arrived(self, packets: list[Packet]) -> None:
        # Called inside the loop's flush: handled at the start of the next turn, so that what
        # the bridge does with them is committed and flushed by that turn like any input.
        if not self._waiting:
            self._post(self._run)
        self._waiting.extend(packets)

    def _run(self) -> None:
        packets, self._waiting = self._waiting, []
        self._receive(packets)
