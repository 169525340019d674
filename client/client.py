"""``Client``: paho-mqtt 2.x's client API (callback API VERSION2), the shell around the sans-IO
:class:`~mqlite.client.session.ClientSession`.

Thread model: one lock guards the state. Public methods may be called from any thread; they
only queue packets and signal ``on_socket_register_write``. Reading, writing and timers happen
in ``loop_read()``, ``loop_write()`` and ``loop_misc()``, on whichever thread the application's
loop (or a built-in loop) calls them from; none of them blocks. The session's events become
user callbacks, which run after the lock is released, in the order their events happened.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from mqlite.protocol import EMPTY_PROPERTIES, Disconnect, MQTTError, encode
from mqlite.protocol import Properties as WireProperties

from . import transport
from .callbacks import ClientCallbacks
from .constants import (
    MQTT_CLEAN_START_FIRST_ONLY,
    MQTT_ERR_NO_CONN,
    MQTT_ERR_SUCCESS,
    MQTT_LOG_DEBUG,
    MQTT_LOG_ERR,
    CallbackAPIVersion,
    MQTTErrorCode,
    MQTTv5,
    MQTTv311,
)
from .enhanced_auth import Authenticator
from .events import (
    Connected,
    ConnectionEnds,
    Event,
    MessageReceived,
    ProtocolViolated,
    PublishCompleted,
    Reauthenticated,
    Relayed,
    RequestAcknowledged,
)
from .loops import BuiltinLoop
from .message import MQTTMessage, MQTTMessageInfo
from .mqtt5_types import (
    PacketTypes,
    Properties,
    ReasonCode,
    SubscribeOptions,
    to_wire,
)
from .outbox import Outbox
from .payloads import pack_msgpack
from .session import ClientSession
from .settings import check_topic_name, checked_arguments, payload_bytes
from .subscriptions import parse_subscribe_args
from .transport import READ_SIZE

MAX_PAYLOAD = 268_435_455
Calls = list[Callable[[], None]]


class Client(ClientCallbacks):
    """An MQTT 3.1.1 / 5.0 client; see the module docstring and the README's client section."""

    def __init__(
        self,
        callback_api_version: CallbackAPIVersion = CallbackAPIVersion.VERSION1,
        client_id: str | bytes | None = "",
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
        client_id = checked_arguments(callback_api_version, client_id, clean_session, protocol,
                                      transport)
        self._callback_api_version = callback_api_version
        self._v1_callbacks = callback_api_version == CallbackAPIVersion.VERSION1
        self._protocol = protocol
        self._transport = transport
        self._reconnect_on_failure = reconnect_on_failure
        self._lock = threading.RLock()
        self._registration_lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []

        ClientCallbacks.__init__(self, userdata, manual_ack)
        self._sock: Any = None
        self._read_buffer = bytearray(READ_SIZE)
        self._registered_write = False
        self._user_disconnected = False
        self._connect_requested = False  # connect*() was called (and no disconnect() since)
        self.opening = False  # connect() is opening the connection on the caller's thread
        outbox = Outbox(persistence, client_id, persistence_sync) if persistence else None
        self._session = ClientSession(self, client_id, protocol,
                                      True if clean_session is None else clean_session, outbox,
                                      self._log)
        self._builtin = BuiltinLoop(self)

    # ----------------------------------------------------------------- properties
    @property
    def protocol(self) -> int:
        return self._protocol

    @property
    def callback_api_version(self) -> CallbackAPIVersion:
        return self._callback_api_version

    @property
    def client_id(self) -> str:
        return self._session.client_id

    @property
    def transport(self) -> str:
        return self._transport

    @transport.setter
    def transport(self, value: str) -> None:
        if self._connection_active():
            raise RuntimeError("updating transport on established connection is not supported")
        if value not in ("tcp", "unix", "websockets"):
            raise ValueError(f"transport {value!r} is not supported: use 'tcp', 'websockets' "
                             "or 'unix'")
        self._transport = value

    @property
    def _thread(self) -> threading.Thread | None:
        """paho's name for the loop_start() thread (some programs and paho's tests read it)."""
        return self._builtin.thread

    def _connection_active(self) -> bool:
        """Connected, connecting, or to reconnect (a loop does): connection settings stay."""
        return self._sock is not None or (self._connect_requested
                                          and not self._user_disconnected)

    @property
    def reconnect_on_failure(self) -> bool:
        """Whether the built-in loops reconnect after losing the connection."""
        return self._reconnect_on_failure

    @property
    def disconnect_requested(self) -> bool:
        """``disconnect()`` was called since the last connect: a loop stops once the socket
        has closed (and lets the DISCONNECT be written first)."""
        return self._user_disconnected

    # ------------------------------------------------------------------ connecting
    def connect(self, host: str, port: int = 1883, keepalive: int = 60, bind_address: str = "",
                bind_port: int = 0, clean_start: int = MQTT_CLEAN_START_FIRST_ONLY,
                properties: Properties | None = None) -> MQTTErrorCode:
        """Open the connection (blocking: name lookup, TCP, TLS) and queue CONNECT. CONNACK is
        handled by the loop. Raises ``OSError`` if the broker cannot be reached."""
        self.opening = True  # a loop_start() thread waiting for a connect leaves this one be
        try:
            self._set_target(host, port, keepalive, bind_address, bind_port, clean_start,
                             properties)
            return self.reconnect()
        finally:
            self.opening = False
            self._builtin.connect_requested.set()

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60,
                      bind_address: str = "", bind_port: int = 0,
                      clean_start: int = MQTT_CLEAN_START_FIRST_ONLY,
                      properties: Properties | None = None) -> None:
        """Only record where to connect; ``loop_start()`` / ``loop_forever()`` connect."""
        self._set_target(host, port, keepalive, bind_address, bind_port, clean_start,
                         properties)
        self._builtin.connect_requested.set()

    def _set_target(self, host: str, port: int, keepalive: int, bind_address: str,
                    bind_port: int, clean_start: int, properties: Properties | None) -> None:
        if not host:
            raise ValueError("Invalid host.")
        if keepalive < 0:
            raise ValueError("Keepalive must be >=0.")
        if self._protocol != MQTTv5 and (clean_start != MQTT_CLEAN_START_FIRST_ONLY
                                         or properties is not None):
            raise ValueError("Clean start and properties are only used with MQTTv5")
        self._host, self._port, self._keepalive = host, port, keepalive
        self._bind_address, self._bind_port = bind_address, bind_port
        self._clean_start, self._connect_properties = clean_start, properties
        self._user_disconnected = False
        self._connect_requested = True

    def reconnect(self) -> MQTTErrorCode:
        """Close any current connection and open a new one (blocking), queueing CONNECT."""
        if not self.host:
            raise ValueError("connect() or connect_async() must be called first")
        self._close(MQTT_ERR_SUCCESS, None)
        self._call(self.on_pre_connect)
        sock = self.open_socket()
        rc = self.attach_socket(sock)
        # The blocking connect ends with CONNECT written, as paho's does (a program may read
        # the CONNACK with loop_read() alone); what the socket does not take waits.
        self.loop_write()
        return rc

    def open_socket(self) -> Any:
        """The blocking half of ``reconnect()``: return a connected, non-blocking socket for the
        configured broker without touching the client's state. Safe on any thread, e.g. an
        executor, so an event loop never blocks on it; pass the result to ``attach_socket``."""
        return transport.open_connection(
            self.host, self.port, self.connect_timeout, self._bind_address, self._bind_port,
            self._tls_context, self._transport, self._ws_path, self._ws_headers,
        )

    def attach_socket(self, sock: Any) -> MQTTErrorCode:
        """Adopt a socket from ``open_socket()``: ``on_socket_open`` fires, CONNECT is queued
        and ``on_socket_register_write`` follows."""
        self._close(MQTT_ERR_SUCCESS, None)
        with self._lock:
            self._user_disconnected = False
            self._connect_requested = True
            self._sock = sock
            self._session.open(time.monotonic())
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
            self._session.disconnect(code, to_wire(properties))
        self._update_write_registration()
        return MQTT_ERR_SUCCESS

    def enhanced_auth(self, authenticator: Authenticator | None) -> None:
        """MQTT 5 enhanced authentication from the next CONNECT on, e.g.
        ``ScramSha256("alice", "secret")`` (mqlite.client.enhanced_auth); None: none."""
        if authenticator is not None and self._protocol != MQTTv5:
            raise ValueError("enhanced authentication needs MQTT 5")
        with self._lock:
            self.authenticator = authenticator

    def reauthenticate(self) -> MQTTErrorCode:
        """Prove who we are again on this connection (AUTH 0x19); ``on_auth`` is called when
        the broker accepts, a DISCONNECT 0x87 comes if it does not."""
        with self._lock:
            if not self._session.conn.connected:
                return MQTT_ERR_NO_CONN
            self._session.reauthenticate()
        self._update_write_registration()
        return MQTT_ERR_SUCCESS

    def is_connected(self) -> bool:
        return self._session.conn.connected

    # ------------------------------------------------------------------ publishing
    def publish(self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False,
                properties: Properties | None = None) -> MQTTMessageInfo:
        """Queue a message; safe from any thread. While offline it waits for the next
        connection (bounded by ``max_queued_messages_set``), with ``rc == MQTT_ERR_SUCCESS``."""
        if topic or properties is None or getattr(properties, "TopicAlias", None) is None:
            check_topic_name(topic)  # "" only with a topic alias set up before (MQTT 5)
        if qos not in (0, 1, 2):
            raise ValueError("Invalid QoS level.")
        data = payload_bytes(payload)
        if len(data) > MAX_PAYLOAD:
            raise ValueError("Payload too large.")
        wire_props = to_wire(properties) if properties is not None else EMPTY_PROPERTIES
        with self._lock:
            info = self._session.publish(topic, data, qos, retain, wire_props)
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
            dropped = self._session.drop_out_messages()
        return [pending.as_message() for pending in dropped]

    def pending_messages(self) -> list[MQTTMessageInfo]:
        """The infos of messages not yet completed, oldest first (including any restored from
        the durable outbox, so a program can wait for them)."""
        with self._lock:
            return [pending.info for pending in self._session.outgoing.messages.values()]

    # ---------------------------------------------------------------- subscribing
    def subscribe(self, topic: Any, qos: int = 0, options: SubscribeOptions | None = None,
                  properties: Properties | None = None) -> tuple[MQTTErrorCode, int | None]:
        """Subscribe; while offline the request is kept and sent after the next CONNACK.
        Subscriptions are made again by themselves when the broker reports no session."""
        subscriptions = parse_subscribe_args(topic, qos, options)
        with self._lock:
            mid = self._session.subscribe(subscriptions, to_wire(properties))
        self._update_write_registration()
        return MQTT_ERR_SUCCESS, mid

    def unsubscribe(self, topic: str | list[str], properties: Properties | None = None
                    ) -> tuple[MQTTErrorCode, int | None]:
        filters = [topic] if isinstance(topic, str) else list(topic)
        if not filters or not all(isinstance(f, str) and f for f in filters):
            raise ValueError("Invalid topic.")
        with self._lock:
            mid = self._session.unsubscribe(filters, to_wire(properties))
        self._update_write_registration()
        return MQTT_ERR_SUCCESS, mid

    def relay_send(self, packet: Any) -> MQTTErrorCode:
        """Relay mode: send a PUBLISH, PUBACK, PUBREC, PUBREL or PUBCOMP as it is (see
        relay_set); MQTT_ERR_NO_CONN, and nothing sent, without a connection."""
        with self._lock:
            if self._sock is None or not self._session.conn.connected:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            self._session.relay(packet)
        self._update_write_registration()
        return MQTT_ERR_SUCCESS

    def ack(self, mid: int, qos: int) -> MQTTErrorCode:
        """With ``manual_ack``: acknowledge a received message once it is processed."""
        if not self._manual_ack or qos not in (1, 2):
            return MQTT_ERR_SUCCESS
        with self._lock:
            if self._sock is None:
                return MQTT_ERR_NO_CONN
            self._session.acknowledge(mid, qos)
        self._update_write_registration()
        return MQTT_ERR_SUCCESS

    # --------------------------------------------------------- the external loop
    def socket(self) -> Any:
        return self._sock

    @property
    def unsent_bytes(self) -> int:
        """Bytes queued for the socket and not yet written (what a slow peer lets pile up)."""
        return len(self._session.out)

    def want_write(self) -> bool:
        return bool(self._session.out) or transport.unsent(self._sock)

    def add_write_waker(self, wake: Callable[[], None]) -> None:
        """Also call ``wake()`` whenever ``want_write()`` becomes true, beside
        ``on_socket_register_write``: for a loop that leaves that callback to the
        application (the built-in loops use it to wake from their wait)."""
        self._wakers.append(wake)

    def remove_write_waker(self, wake: Callable[[], None]) -> None:
        """Undo :meth:`add_write_waker`."""
        with contextlib.suppress(ValueError):
            self._wakers.remove(wake)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read what the socket has (large reads, every complete packet handled, TLS buffers
        drained) and run the callbacks. Never blocks. ``max_packets`` is accepted for paho
        compatibility; all available packets are handled."""
        calls: Calls = []
        rc = MQTT_ERR_SUCCESS
        with self._lock:
            sock = self._sock
            if sock is None:
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
                events = self._session.receive_data(memoryview(buffer)[:count],
                                                    time.monotonic())
                rc = self._handle(events, calls) or rc
                if self._sock is not sock:
                    break
                if count < len(buffer) and not transport.tls_pending(sock):
                    break
        self._run(calls)
        self._update_write_registration()
        return rc

    def loop_write(self) -> MQTTErrorCode:
        """Write queued bytes until the socket would block. Never blocks."""
        calls: Calls = []
        rc = MQTT_ERR_SUCCESS
        with self._lock:
            sock = self._sock
            if sock is None:
                return MQTT_ERR_NO_CONN
            session = self._session
            out = session.out
            try:
                transport.flush(sock)  # a WebSocket's framed bytes from last time go first
                while out:
                    sent = transport.send(sock, out)
                    if not sent:
                        break
                    session.written(sent)
            except transport.CONNECTION_ERRORS as exc:
                self._log(MQTT_LOG_DEBUG, "write failed: %s", exc)
                rc = self._close(MQTTErrorCode.MQTT_ERR_CONN_LOST, calls)
            else:
                self._handle(session.write_done(time.monotonic()), calls)
        self._run(calls)
        self._update_write_registration()
        return rc

    def loop_misc(self) -> MQTTErrorCode:
        """Keepalive: PINGREQ when due, and closing a connection whose CONNACK or PINGRESP is
        late. Call it about once a second (or after ``next_timeout()`` seconds)."""
        calls: Calls = []
        with self._lock:
            if self._sock is None:
                return MQTT_ERR_NO_CONN
            self._handle(self._session.tick(time.monotonic()), calls)
        self._run(calls)
        self._update_write_registration()
        return MQTT_ERR_SUCCESS if self._sock is not None else MQTT_ERR_NO_CONN

    def next_timeout(self) -> float | None:
        """Seconds until ``loop_misc()`` has something to do; None without a connection."""
        with self._lock:
            if self._sock is None:
                return None
            return self._session.next_deadline(time.monotonic())

    # ------------------------------------------------------------ built-in loops
    def loop(self, timeout: float = 1.0) -> MQTTErrorCode:
        return self._builtin.once(timeout)

    def loop_forever(self, timeout: float = 1.0, retry_first_connection: bool = False
                     ) -> MQTTErrorCode:
        return self._builtin.forever(timeout, retry_first_connection)

    def loop_start(self) -> MQTTErrorCode:
        return self._builtin.start()

    def loop_stop(self) -> MQTTErrorCode:
        return self._builtin.stop()

    # ------------------------------------------------------- events to callbacks
    def _handle(self, events: list[Event], calls: Calls) -> MQTTErrorCode:
        """Turn the session's events into callbacks (run once the lock is released)."""
        rc = MQTT_ERR_SUCCESS
        for event in events:
            if isinstance(event, MessageReceived):
                calls.append(functools.partial(self._deliver, event.message, event.ack_qos))
            elif isinstance(event, PublishCompleted):
                calls.append(functools.partial(self._published, event))
            elif isinstance(event, Connected):
                calls.append(functools.partial(self._on_connack, event))
            elif isinstance(event, RequestAcknowledged):
                calls.append(functools.partial(self._acknowledged, event))
            elif isinstance(event, Reauthenticated):
                calls.append(functools.partial(self._call, self.on_auth, ReasonCode(
                    PacketTypes.AUTH, "Success"), event.properties))
            elif isinstance(event, ConnectionEnds):
                self._close(event.rc, calls, event.reason_code, event.from_server,
                            event.properties or EMPTY_PROPERTIES)
            elif isinstance(event, ProtocolViolated):
                rc = self._protocol_violation(event.error, calls)
            elif isinstance(event, Relayed) and self._relay is not None:
                calls.append(functools.partial(self._relay, event.packet))
        return rc

    def _on_connack(self, event: Connected) -> None:
        server_keep_alive = getattr(event.properties, "ServerKeepAlive", None)
        if server_keep_alive is not None:  # the broker's word is the keep alive, as in paho
            self._keepalive = server_keep_alive
        if self._v1_callbacks:  # paho 1.x: a flags dict; MQTT 3.1.1 the return code alone
            flags = {"session present": int(event.flags.session_present)}
            if self._protocol == MQTTv5:
                self._call(self.on_connect, flags, event.reason, event.properties)
            else:
                self._call(self.on_connect, flags, event.return_code)
        else:
            self._call(self.on_connect, event.flags, event.reason, event.properties)
        if event.accepted:  # then what waited goes out: offline requests, resends, the queue
            with self._lock:
                self._session.resume()
            self._update_write_registration()

    def _deliver(self, message: MQTTMessage, ack_qos: int) -> None:
        """Run the message's callback, then acknowledge it: so a crash before that means the
        broker sends the message again. An exception not suppressed also withholds the ack."""
        try:
            matched = self._topic_callbacks.match(message.topic)
            if matched:
                for entries in matched:
                    for callback in list(entries.values()):
                        callback(self, self._userdata, message)
            elif self.on_message is not None:
                self.on_message(self, self._userdata, message)
        except Exception as exc:
            if not ack_qos or not self._suppressing():
                raise
            self._log_callback_error(exc)
        if not ack_qos or self._manual_ack:
            return
        with self._lock:
            if self._sock is None:
                return
            self._session.acknowledge(message.mid, ack_qos)
        self._update_write_registration()

    # ------------------------------------------------------------------ internals
    def _update_write_registration(self) -> None:
        """Fire on_socket_register_write / unregister_write on a change of want_write(),
        serialised so the calls always pair up and never follow on_socket_close."""
        want = self.want_write()
        if want == self._registered_write:
            return
        with self._registration_lock:
            sock = self._sock
            want = self.want_write() and sock is not None
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

    def _close(self, rc: MQTTErrorCode, calls: Calls | None, reason: Any = None,
               from_server: bool = False, properties: WireProperties = EMPTY_PROPERTIES
               ) -> MQTTErrorCode:
        """Drop the connection. With ``calls`` None the callbacks run at once."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return rc
            was_connected = self._session.conn.connected
            self._sock = None
            lost = self._session.closed()
        own: Calls = []
        own.append(lambda: self._unregister_for_close(sock))
        own.append(lambda: self._call(self.on_socket_close, sock))
        own.append(lambda: transport.close(sock))
        for info in lost:
            own.append(functools.partial(info._finish, MQTTErrorCode.MQTT_ERR_CONN_LOST))
        if was_connected or rc != MQTT_ERR_SUCCESS or reason is not None:
            own.append(lambda: self._disconnected(rc, reason, from_server, properties))
        if calls is None:
            self._run(own)
        else:
            calls.extend(own)
        return rc

    def _protocol_violation(self, exc: MQTTError, calls: Calls) -> MQTTErrorCode:
        self._log(MQTT_LOG_ERR, "protocol error from the broker: %s", exc)
        sock = self._sock
        # DISCONNECT only on a connection the CONNACK opened (not to a broker that never
        # accepted us), as paho.
        if self._protocol == MQTTv5 and sock is not None and self._session.conn.connected:
            with contextlib.suppress(transport.CONNECTION_ERRORS):
                transport.send(sock, self._session.out + encode(
                    Disconnect(reason_code=exc.reason_code), 5))
        return self._close(MQTTErrorCode.MQTT_ERR_PROTOCOL, calls)
