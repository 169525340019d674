"""``Client``: paho-mqtt 2.x's client API (callback API VERSION2) on mqlite's protocol core.

Thread model: one lock guards the state. Public methods may be called from any thread; they
only queue packets and signal ``on_socket_register_write``. Reading, writing and timers happen
in ``loop_read()``, ``loop_write()`` and ``loop_misc()``, on whichever thread the application's
loop (or a built-in loop) calls them from; none of them blocks. User callbacks run after the
lock is released, in the order their events happened.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from mqlite.protocol import (
    EMPTY_PROPERTIES,
    Disconnect,
    MQTTError,
    PacketIdAllocator,
    PacketReader,
    Pingreq,
    Puback,
    Pubcomp,
    Pubrel,
    Subscribe,
    Unsubscribe,
    encode,
    encode_publish_fields,
)
from mqlite.protocol import Properties as WireProperties

from . import inbound, transport
from .callbacks import (
    OnClientEvent,
    OnConnect,
    OnDisconnect,
    OnLog,
    OnMessage,
    OnPublish,
    OnSocket,
    OnSubscribe,
)
from .connection_state import ConnectionState
from .constants import (
    MQTT_CLEAN_START_FIRST_ONLY,
    MQTT_ERR_NO_CONN,
    MQTT_ERR_PAYLOAD_SIZE,
    MQTT_ERR_QUEUE_SIZE,
    MQTT_ERR_SUCCESS,
    MQTT_LOG_DEBUG,
    MQTT_LOG_ERR,
    CallbackAPIVersion,
    MQTTErrorCode,
    MQTTv5,
    MQTTv311,
)
from .loops import LoopState, run_forever, run_once, start_thread, stop_thread
from .message import MQTTMessage, MQTTMessageInfo
from .mqtt5_types import Properties, SubscribeOptions, to_wire
from .outbox import Outbox
from .outgoing import Outgoing, Pending
from .payloads import pack_msgpack
from .settings import (
    Callback,
    ClientSettings,
    check_topic_name,
    fallback_logger,
    payload_bytes,
)
from .subscriptions import SubscriptionBook, parse_subscribe_args
from .transport import READ_SIZE

MAX_PAYLOAD = 268_435_455
_LOGGING_LEVELS = {0x01: logging.INFO, 0x02: logging.INFO, 0x04: logging.WARNING,
                   0x08: logging.ERROR, 0x10: logging.DEBUG}




class Client(ClientSettings):
    """An MQTT 3.1.1 / 5.0 client; see the module docstring and the README's client section."""

    def __init__(
        self,
        callback_api_version: CallbackAPIVersion = CallbackAPIVersion.VERSION2,
        client_id: str | None = "",
        clean_session: bool | None = None,
        userdata: Any = None,
        protocol: int = MQTTv311,
        transport: str = "tcp",
        reconnect_on_failure: bool = True,
        manual_ack: bool = False,
        *,
        persistence: str | None = None,
        persistence_sync: str = "normal",
    ) -> None:
        if isinstance(callback_api_version, str):
            raise TypeError("the first argument is callback_api_version; client_id comes after")
        if callback_api_version != CallbackAPIVersion.VERSION2:
            raise ValueError("mqlite.client supports callback API VERSION2 only: pass "
                             "CallbackAPIVersion.VERSION2 (paho-mqtt 2.x's current signatures)")
        if protocol not in (MQTTv311, MQTTv5, 3):
            raise ValueError(f"unsupported protocol {protocol}: use MQTTv311 or MQTTv5")
        if protocol == MQTTv5 and clean_session is not None:
            raise ValueError("clean_session is not used with MQTTv5: use clean_start in connect()")
        if transport not in ("tcp", "unix"):
            raise ValueError(f"transport {transport!r} is not supported: use 'tcp' or 'unix'")
        client_id = client_id or ""
        if clean_session is False and not client_id:
            raise ValueError("A client id must be provided if clean session is False.")
        if protocol == 3 and not client_id:
            client_id = "mqlite-" + uuid.uuid4().hex[:16]
        self._callback_api_version = callback_api_version
        self._client_id = client_id
        self._clean_session = True if clean_session is None else clean_session
        self._protocol = protocol
        self._transport = transport
        self._reconnect_on_failure = reconnect_on_failure
        self._lock = threading.RLock()
        self._registration_lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []

        ClientSettings.__init__(self, userdata, manual_ack)
        self.suppress_exceptions: bool | None = None
        self._builtin_loop = False
        self._loop_state: LoopState | None = None

        self.on_connect: OnConnect | None = None
        self.on_connect_fail: OnClientEvent | None = None
        self.on_pre_connect: OnClientEvent | None = None
        self.on_disconnect: OnDisconnect | None = None
        self.on_message: OnMessage | None = None
        self.on_publish: OnPublish | None = None
        self.on_subscribe: OnSubscribe | None = None
        self.on_unsubscribe: OnSubscribe | None = None
        self.on_log: OnLog | None = None
        self.on_socket_open: OnSocket | None = None
        self.on_socket_close: OnSocket | None = None
        self.on_socket_register_write: OnSocket | None = None
        self.on_socket_unregister_write: OnSocket | None = None

        self._conn = ConnectionState()
        self._sock: Any = None
        self._reader: PacketReader | None = None
        self._read_buffer = bytearray(READ_SIZE)
        self._out = bytearray()
        # QoS 0 messages in _out: (stream offset where the message ends, its info).
        self._qos0_unsent: deque[tuple[int, MQTTMessageInfo]] = deque()
        self._queued_total = 0
        self._written_total = 0
        self._registered_write = False
        self._connection_number = 0
        self._user_disconnected = False
        self._connected_once = False
        self._in_qos2: dict[int, MQTTMessage] = {}
        self._subscriptions = SubscriptionBook()
        # SUBSCRIBE / UNSUBSCRIBE packets made while offline, sent after the next CONNACK.
        self._offline_requests: list[Any] = []
        self._outbox = Outbox(persistence, client_id, persistence_sync) if persistence else None
        # SUBSCRIBE, UNSUBSCRIBE and in-flight PUBLISH packets share the wire ids.
        self._ids = PacketIdAllocator()
        self._outgoing = Outgoing(self._outbox, self._ids)
        # What publish() returns as mid: a counter, as paho's, independent of wire ids.
        self._last_mid = 0
        self._restore_outbox()

    # ----------------------------------------------------------------- properties
    @property
    def protocol(self) -> int:
        return self._protocol

    @property
    def callback_api_version(self) -> CallbackAPIVersion:
        return self._callback_api_version

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def transport(self) -> str:
        return self._transport

    # ------------------------------------------------------------------ connecting
    def connect(self, host: str, port: int = 1883, keepalive: int = 60, bind_address: str = "",
                bind_port: int = 0, clean_start: int = MQTT_CLEAN_START_FIRST_ONLY,
                properties: Properties | None = None) -> MQTTErrorCode:
        """Open the connection (blocking: name lookup, TCP, TLS) and queue CONNECT. CONNACK is
        handled by the loop. Raises ``OSError`` if the broker cannot be reached."""
        self.connect_async(host, port, keepalive, bind_address, bind_port, clean_start,
                           properties)
        return self.reconnect()

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60,
                      bind_address: str = "", bind_port: int = 0,
                      clean_start: int = MQTT_CLEAN_START_FIRST_ONLY,
                      properties: Properties | None = None) -> None:
        """Only record where to connect; ``loop_start()`` / ``loop_forever()`` connect."""
        if not host:
            raise ValueError("Invalid host.")
        if keepalive < 0:
            raise ValueError("Keepalive must be >=0.")
        if self._protocol != MQTTv5 and (clean_start != MQTT_CLEAN_START_FIRST_ONLY
                                         or properties is not None):
            raise ValueError("Clean start and properties are only used with MQTTv5")
        self.host, self.port, self.keepalive = host, port, keepalive
        self._bind_address, self._bind_port = bind_address, bind_port
        self._clean_start, self._connect_properties = clean_start, properties
        self._user_disconnected = False

    def reconnect(self) -> MQTTErrorCode:
        """Close any current connection and open a new one (blocking), queueing CONNECT."""
        if not self.host:
            raise ValueError("connect() or connect_async() must be called first")
        self._close(MQTT_ERR_SUCCESS, None)
        self._call(self.on_pre_connect)
        sock = self.open_socket()
        return self.attach_socket(sock)

    def open_socket(self) -> Any:
        """The blocking half of ``reconnect()``: return a connected, non-blocking socket for the
        configured broker without touching the client's state. Safe on any thread, e.g. an
        executor, so an event loop never blocks on it; pass the result to ``attach_socket``."""
        return transport.open_connection(
            self.host, self.port, self.connect_timeout, self._bind_address, self._bind_port,
            self._tls_context, self._transport,
        )

    def attach_socket(self, sock: Any) -> MQTTErrorCode:
        """Adopt a socket from ``open_socket()``: ``on_socket_open`` fires, CONNECT is queued
        and ``on_socket_register_write`` follows."""
        self._close(MQTT_ERR_SUCCESS, None)
        with self._lock:
            self._user_disconnected = False
            self._sock = sock
            self._reader = PacketReader("client", version=self._wire_version())
            self._out.clear()
            self._qos0_unsent.clear()
            self._queued_total = self._written_total = 0
            self._in_qos2.clear()
            self._conn.opened(time.monotonic())
            self._connection_number += 1
            self._queue_packet(inbound.connect_packet(self))
        self._call(self.on_socket_open, sock)
        self._update_write_registration()
        return MQTT_ERR_SUCCESS

    def disconnect(self, reasoncode: Any = None, properties: Properties | None = None
                   ) -> MQTTErrorCode:
        """Queue DISCONNECT (after anything already queued); the socket closes once it is
        written and the broker discards the will. The built-in loops then stop."""
        with self._lock:
            self._user_disconnected = True
            if self._sock is None:
                return MQTT_ERR_NO_CONN
            code = int(reasoncode) if reasoncode is not None else 0
            self._queue_packet(Disconnect(reason_code=code, properties=to_wire(properties)))
            self._conn.disconnecting = True
        self._update_write_registration()
        return MQTT_ERR_SUCCESS

    def is_connected(self) -> bool:
        return self._conn.connected

    # ------------------------------------------------------------------ publishing
    def publish(self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False,
                properties: Properties | None = None) -> MQTTMessageInfo:
        """Queue a message; safe from any thread. While offline it waits for the next
        connection (bounded by ``max_queued_messages_set``), with ``rc == MQTT_ERR_SUCCESS``."""
        check_topic_name(topic)
        if qos not in (0, 1, 2):
            raise ValueError("Invalid QoS level.")
        data = payload_bytes(payload)
        if len(data) > MAX_PAYLOAD:
            raise ValueError("Payload too large.")
        wire_props = to_wire(properties) if properties is not None else EMPTY_PROPERTIES
        with self._lock:
            outgoing = self._outgoing
            if qos == 0 and self._conn.ready and not outgoing.waiting:
                # The hot path: straight into the output buffer.
                info = MQTTMessageInfo(self._new_mid())
                self._queue_bytes(encode_publish_fields(
                    topic, data, 0, retain, False, None, wire_props, self._wire_version()))
                self._qos0_unsent.append((self._queued_total, info))
            else:
                limit = self.max_queued_messages
                if limit and outgoing.stored() >= limit:
                    info = MQTTMessageInfo(0)
                    info.rc = MQTT_ERR_QUEUE_SIZE
                    return info
                info = MQTTMessageInfo(self._new_mid())
                outgoing.add(Pending(info, topic, data, qos, retain, wire_props))
                if self._outbox is not None:
                    self._outbox.commit()
                if self._conn.ready:
                    self._pump()
        self._update_write_registration()
        return info

    def publish_msgpack(self, topic: str, obj: Any, qos: int = 0, retain: bool = False,
                        properties: Properties | None = None) -> MQTTMessageInfo:
        """Publish ``obj`` packed with msgpack; with MQTT 5 the message carries the content
        type ``application/msgpack``. Read it back with ``message.unpack_msgpack()``."""
        payload, properties = pack_msgpack(obj, properties, self._protocol == MQTTv5)
        return self.publish(topic, payload, qos, retain, properties)

    def drop_out_messages(self) -> list[MQTTMessage]:
        """Remove and return every unfinished outgoing message."""
        with self._lock:
            dropped = self._outgoing.drop_all()
            if self._outbox is not None:
                self._outbox.commit()
        return [self._as_message(pending) for pending in dropped]

    # ---------------------------------------------------------------- subscribing
    def subscribe(self, topic: Any, qos: int = 0, options: SubscribeOptions | None = None,
                  properties: Properties | None = None) -> tuple[MQTTErrorCode, int | None]:
        """Subscribe; while offline the request is kept and sent after the next CONNACK.
        Subscriptions are made again by themselves when the broker reports no session."""
        subscriptions = parse_subscribe_args(topic, qos, options)
        wire_props = to_wire(properties)
        with self._lock:
            mid = self._ids.allocate()
            packet = Subscribe(packet_id=mid, subscriptions=subscriptions, properties=wire_props)
            self._subscriptions.awaiting_ack[mid] = [s.topic_filter for s in subscriptions]
            if self._conn.connected:
                self._subscriptions.add(subscriptions, wire_props, self._connection_number)
                self._queue_packet(packet)
            else:
                self._subscriptions.add(subscriptions, wire_props, -1)
                self._offline_requests.append(packet)
        self._update_write_registration()
        return MQTT_ERR_SUCCESS, mid

    def unsubscribe(self, topic: str | list[str], properties: Properties | None = None
                    ) -> tuple[MQTTErrorCode, int | None]:
        filters = [topic] if isinstance(topic, str) else list(topic)
        if not filters or not all(isinstance(f, str) and f for f in filters):
            raise ValueError("Invalid topic.")
        with self._lock:
            mid = self._ids.allocate()
            packet = Unsubscribe(packet_id=mid, topic_filters=filters,
                                 properties=to_wire(properties))
            self._subscriptions.remove(filters)
            if self._conn.connected:
                self._queue_packet(packet)
            else:
                self._offline_requests.append(packet)
        self._update_write_registration()
        return MQTT_ERR_SUCCESS, mid

    def ack(self, mid: int, qos: int) -> MQTTErrorCode:
        """With ``manual_ack``: acknowledge a received message once it is processed."""
        if not self._manual_ack or qos not in (1, 2):
            return MQTT_ERR_SUCCESS
        with self._lock:
            if self._sock is None:
                return MQTT_ERR_NO_CONN
            self._queue_packet(Puback(packet_id=mid) if qos == 1 else Pubcomp(packet_id=mid))
        self._update_write_registration()
        return MQTT_ERR_SUCCESS

    # --------------------------------------------------------- the external loop
    def socket(self) -> Any:
        return self._sock

    def want_write(self) -> bool:
        return bool(self._out)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read what the socket has (large reads, every complete packet handled, TLS buffers
        drained) and run the callbacks. Never blocks. ``max_packets`` is accepted for paho
        compatibility; all available packets are handled."""
        calls: list[Callable[[], None]] = []
        rc = MQTT_ERR_SUCCESS
        with self._lock:
            sock, reader = self._sock, self._reader
            if sock is None or reader is None:
                return MQTT_ERR_NO_CONN
            buffer = self._read_buffer
            for _ in range(64):
                try:
                    count = transport.receive(sock, buffer)
                except transport.CONNECTION_ERRORS as exc:
                    self._log(MQTT_LOG_DEBUG, "read failed: %s", exc)
                    rc = self._close(MQTTErrorCode.MQTT_ERR_CONN_LOST, calls)
                    break
                if count == 0:
                    rc = self._close(MQTTErrorCode.MQTT_ERR_CONN_LOST, calls)
                    break
                if count < 0:
                    if transport.tls_pending(sock):
                        continue
                    break
                self._conn.last_in = time.monotonic()
                try:
                    for packet in reader.feed(memoryview(buffer)[:count]):
                        inbound.handle_packet(self, packet, calls)
                        if self._sock is not sock:
                            break
                except MQTTError as exc:
                    rc = self._protocol_violation(exc, calls)
                if self._sock is not sock:
                    break
                if count < len(buffer) and not transport.tls_pending(sock):
                    break
            if self._conn.ready:
                self._pump()
            if self._outbox is not None:
                self._outbox.commit()
        self._run(calls)
        self._update_write_registration()
        return rc

    def loop_write(self) -> MQTTErrorCode:
        """Write queued bytes until the socket would block. Never blocks."""
        calls: list[Callable[[], None]] = []
        rc = MQTT_ERR_SUCCESS
        with self._lock:
            sock = self._sock
            if sock is None:
                return MQTT_ERR_NO_CONN
            out = self._out
            try:
                while out:
                    sent = transport.send(sock, out)
                    if not sent:
                        break
                    del out[:sent]
                    self._written_total += sent
            except transport.CONNECTION_ERRORS as exc:
                self._log(MQTT_LOG_DEBUG, "write failed: %s", exc)
                rc = self._close(MQTTErrorCode.MQTT_ERR_CONN_LOST, calls)
            else:
                self._conn.last_out = time.monotonic()
                self._finish_written_qos0(calls)
                if not out and self._conn.disconnecting:
                    rc = self._close(MQTT_ERR_SUCCESS, calls)
        self._run(calls)
        self._update_write_registration()
        return rc

    def loop_misc(self) -> MQTTErrorCode:
        """Keepalive: PINGREQ when due, and closing a connection whose CONNACK or PINGRESP is
        late. Call it about once a second (or after ``next_timeout()`` seconds)."""
        calls: list[Callable[[], None]] = []
        with self._lock:
            if self._sock is None:
                return MQTT_ERR_NO_CONN
            action = self._conn.check(time.monotonic(), self._effective_keepalive(),
                                      self.connect_timeout)
            if action == "ping":
                self._queue_packet(Pingreq())
            elif action == "timeout":
                self._log(MQTT_LOG_DEBUG, "keepalive timeout")
                self._close(MQTTErrorCode.MQTT_ERR_KEEPALIVE, calls)
        self._run(calls)
        self._update_write_registration()
        return MQTT_ERR_SUCCESS if self._sock is not None else MQTT_ERR_NO_CONN

    def next_timeout(self) -> float | None:
        """Seconds until ``loop_misc()`` has something to do; None without a connection."""
        with self._lock:
            if self._sock is None:
                return None
            return self._conn.next_deadline(time.monotonic(), self._effective_keepalive(),
                                            self.connect_timeout)

    # ------------------------------------------------------------ built-in loops
    def loop(self, timeout: float = 1.0) -> MQTTErrorCode:
        return run_once(self, timeout)

    def loop_forever(self, timeout: float = 1.0, retry_first_connection: bool = False
                     ) -> MQTTErrorCode:
        return run_forever(self, timeout, retry_first_connection)

    def loop_start(self) -> MQTTErrorCode:
        return start_thread(self)

    def loop_stop(self) -> MQTTErrorCode:
        return stop_thread(self)

    # ------------------------------------------------------------------ internals
    def _wire_version(self) -> int:
        return int(self._protocol)

    def _effective_keepalive(self) -> int:
        return self._conn.server_keep_alive if self._conn.server_keep_alive is not None \
            else self.keepalive


    def _restore_outbox(self) -> None:
        if self._outbox is None:
            return
        for stored in self._outbox.load():
            info = MQTTMessageInfo(stored.mid)
            self._outgoing.restore(Pending(info, stored.topic, stored.payload, stored.qos,
                                           stored.retain, stored.properties, stored.state,
                                           stored.packet_id), stored.seq)

    def pending_messages(self) -> list[MQTTMessageInfo]:
        """The infos of messages not yet completed, oldest first (including any restored from
        the durable outbox, so a program can wait for them)."""
        with self._lock:
            return [pending.info for pending in self._outgoing.messages.values()]

    def _new_mid(self) -> int:
        self._last_mid = self._last_mid % 65535 + 1
        return self._last_mid

    def _queue_packet(self, packet: Any) -> None:
        self._queue_bytes(encode(packet, self._wire_version()))

    def _queue_bytes(self, data: bytes) -> None:
        self._out += data
        self._queued_total += len(data)

    def _pump(self) -> None:
        """Move waiting messages into the output buffer as the in-flight window allows."""
        outgoing = self._outgoing
        window = self.max_inflight_messages or 65535
        if self._conn.server_receive_maximum:
            window = min(window, self._conn.server_receive_maximum)
        version = self._wire_version()
        max_size = self._conn.server_maximum_packet_size
        while True:
            pending = outgoing.next_to_send(window)
            if pending is None:
                return
            if pending.state == 2:
                self._queue_packet(Pubrel(packet_id=pending.packet_id))
                continue
            data = encode_publish_fields(
                pending.topic, pending.payload, pending.qos, pending.retain,
                pending.sent_before and pending.qos > 0,
                pending.packet_id if pending.qos else None, pending.properties, version)
            if max_size and len(data) > max_size:
                self._fail_too_large(pending)
                continue
            self._queue_bytes(data)
            if pending.qos:
                outgoing.mark_sent(pending)
            else:
                self._qos0_unsent.append((self._queued_total, pending.info))

    def _fail_too_large(self, pending: Pending) -> None:
        self._log(MQTT_LOG_ERR, "message to %s exceeds the broker's maximum packet size",
                  pending.topic)
        self._outgoing.discard(pending)
        pending.info._finish(MQTT_ERR_PAYLOAD_SIZE)

    def _finish_written_qos0(self, calls: list[Callable[[], None]]) -> None:
        unsent = self._qos0_unsent
        written = self._written_total
        while unsent and unsent[0][0] <= written:
            info = unsent.popleft()[1]
            calls.append(functools.partial(inbound.complete, self, info, 0, EMPTY_PROPERTIES))

    def _as_message(self, pending: Pending) -> MQTTMessage:
        message = MQTTMessage(pending.mid, pending.topic)
        message.payload, message.qos, message.retain = pending.payload, pending.qos, pending.retain
        message.info = pending.info
        return message

    def _update_write_registration(self) -> None:
        """Fire on_socket_register_write / unregister_write on a change of want_write(),
        serialised so the calls always pair up and never follow on_socket_close."""
        want = bool(self._out)
        if want == self._registered_write:
            return
        with self._registration_lock:
            sock = self._sock
            want = bool(self._out) and sock is not None
            if want == self._registered_write:
                return
            self._registered_write = want
            callback = self.on_socket_register_write if want else \
                self.on_socket_unregister_write
            if want:
                for wake in self._wakers:
                    wake()
            self._call(callback, sock)

    def _unregister_for_close(self, sock: Any) -> None:
        with self._registration_lock:
            if self._registered_write:
                self._registered_write = False
                self._call(self.on_socket_unregister_write, sock)

    def _close(self, rc: MQTTErrorCode, calls: list[Callable[[], None]] | None,
               reason: Any = None, from_server: bool = False,
               properties: WireProperties = EMPTY_PROPERTIES) -> MQTTErrorCode:
        """Drop the connection. With ``calls`` None the callbacks run at once."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return rc
            was_connected = self._conn.connected
            self._sock = None
            self._reader = None
            self._out.clear()
            self._conn.closed()
            lost = [info for _, info in self._qos0_unsent]
            self._qos0_unsent.clear()
            if self._outbox is not None:
                self._outbox.commit()
        own: list[Callable[[], None]] = []
        own.append(lambda: self._unregister_for_close(sock))
        own.append(lambda: self._call(self.on_socket_close, sock))
        own.append(lambda: transport.close(sock))
        for info in lost:
            own.append(functools.partial(info._finish, MQTTErrorCode.MQTT_ERR_CONN_LOST))
        if was_connected or rc != MQTT_ERR_SUCCESS or reason is not None:
            own.append(lambda: inbound.disconnected(self, rc, reason, from_server, properties))
        if calls is None:
            self._run(own)
        else:
            calls.extend(own)
        return rc

    def _protocol_violation(self, exc: MQTTError, calls: list[Callable[[], None]]
                            ) -> MQTTErrorCode:
        self._log(MQTT_LOG_ERR, "protocol error from the broker: %s", exc)
        sock = self._sock
        if self._protocol == MQTTv5 and sock is not None:
            with contextlib.suppress(transport.CONNECTION_ERRORS):
                transport.send(sock, self._out + encode(
                    Disconnect(reason_code=exc.reason_code), 5))
        return self._close(MQTTErrorCode.MQTT_ERR_PROTOCOL, calls)

    # --------------------------------------------------------------- callbacks
    def _suppressing(self) -> bool:
        if self.suppress_exceptions is not None:
            return self.suppress_exceptions
        return self._builtin_loop

    def _call(self, callback: Callback | None, *args: Any) -> None:
        if callback is not None:
            callback(self, self._userdata, *args)

    def _run(self, calls: list[Callable[[], None]]) -> None:
        """Run callbacks in order. One that raises is logged; the rest still run; the first
        error is raised at the end unless exceptions are suppressed."""
        first: BaseException | None = None
        for call in calls:
            try:
                call()
            except Exception as exc:
                if self._suppressing():
                    self._log_callback_error(exc)
                elif first is None:
                    first = exc
        if first is not None:
            raise first

    def _log_callback_error(self, exc: Exception) -> None:
        (self._logger or fallback_logger).error("Caught exception in callback: %s", exc,
                                                 exc_info=exc)

    def _log(self, level: int, fmt: str, *args: Any) -> None:
        if self.on_log is None and self._logger is None:
            return
        text = fmt % args if args else fmt
        if self._logger is not None:
            self._logger.log(_LOGGING_LEVELS.get(level, logging.DEBUG), text)
        if self.on_log is not None:
            try:
                self.on_log(self, self._userdata, level, text)
            except Exception:
                if not self._suppressing():
                    raise

