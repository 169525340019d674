"""The event loop: the selector, the listeners, and every MQTT connection's socket.

Each turn: wait for readiness or the next timer; read each ready socket once into a reusable
buffer and handle the complete packets in it; run due timers; commit the store; then write each
connection's output with one ``send``. Acknowledgements therefore leave only after the commit
that holds what they acknowledge (the store may defer what acknowledges nothing, and says by
when it must be called again).

Flow control: while the core has paused a publishing connection (its messages fill a live
subscriber's queue), its remaining packets wait in its reader and its socket is not read, so
TCP slows the publisher down instead of the subscriber's queue overflowing.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator

from mqlite.protocol import MQTTError, Packet, ReasonCode

from ..config.broker_config import BrokerConfig
from ..config.listener_config import ListenerConfig
from ..engine.connection import CLOSED, NO_OUTPUT, Connection
from ..engine.core import BrokerCore
from ..engine.store import StoreWriteError
from .closing import GracefulClose
from .listeners import Listener, close_listener, open_listeners
from .loop_driven import Acceptor, LoopDriven
from .plugin_sockets import PluginSockets, set_interest
from .tls import WOULD_BLOCK, client_identity, handshake_step, wrap
from .waker import Waker
from .websocket import WebSocketTransport, send_framed

log = logging.getLogger("mqlite.broker")

READ_SIZE = 256 * 1024
# What an accepted MQTT socket may be replaced with (EventLoop.accepted_socket).
AcceptedSocket = Callable[[socket.socket], socket.socket]
_WAKER = "waker"


class EventLoop:
    def __init__(self, core: BrokerCore, config: BrokerConfig, waker: Waker | None = None
                 ) -> None:
        """``waker``: the one the core was built with (its ``call_soon``), if any."""
        self.core = core
        self.config = config
        self.selector = selectors.DefaultSelector()
        self.listeners: list[Listener] = []
        # Every open connection (a dict: at thousands of entries a set's table costs twice
        # the bytes per entry).
        self.connections: dict[Connection, None] = {}
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)
        self._writing: set[Connection] = set()
        # Connections whose handling stopped at a pause, with packets left in their reader.
        self._backlog: set[Connection] = set()
        # Connections closing gracefully (closing.py).
        self._closing = GracefulClose(config, core.system_timers, self._buffer,
                                      self._close_socket, self._watch)
        # Connections whose packets were handled this turn: their acks wait for the commit.
        self._handled = core.handled
        # Callbacks from other threads or signal handlers, run at the start of the next turn.
        self.waker = waker if waker is not None else Waker()
        self.selector.register(self.waker.read_end, selectors.EVENT_READ, _WAKER)
        self._stopping = False
        # The plug-ins' sockets (the http side, Redis links, bridges' remote clients).
        self.plugin_io = PluginSockets(self.selector, self.call_soon)
        # The listener each connection came in on (its count of open connections).
        # TLS connections still in their handshake; and those whose TLS layer holds
        # decrypted input that select() cannot see.
        self._handshaking: dict[Connection, Listener] = {}
        self._tls_pending: set[Connection] = set()
        # What the plug-ins wired in (server.py): how a listener type other than MQTT takes an
        # accepted socket (the http side), what runs after each turn's flush (its writes),
        # and what closes with the loop.
        self.acceptors: dict[str, Acceptor] = {}
        self.after_flush: list[Callable[[], None]] = []
        self.on_close: list[Callable[[], None]] = []
        # How long the last turn's work took (waiting excluded), for /health.
        self.last_turn_seconds = 0.0
        # Run first when the loop stops (bridges say goodbye to their remote brokers).
        self.on_shutdown: list[Callable[[], None]] = []
        # Run last, after the final commit (the cluster node leaves).
        self.on_stopped: list[Callable[[], None]] = []
        # What each accepted MQTT socket is replaced with (mqlite.testing's faulty ones).
        self.accepted_socket: AcceptedSocket | None = None
        # Stop as a killed process would: no goodbye, no final commit (abort()).
        self.aborting = False

    # -- setup and shutdown ----------------------------------------------------------------

    def open_listeners(self, configs: list[ListenerConfig]) -> list[Listener]:
        """Open every listener, or none: ListenerError naming the one that failed."""
        opened = open_listeners(configs, self.config.reuse_port)
        for listener in opened:
            self.add_listener(listener)
        return opened

    def add_listener(self, listener: Listener) -> None:
        self.selector.register(listener.sock, selectors.EVENT_READ, listener)
        self.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop accepting on it and close it; its connections stay."""
        self.selector.unregister(listener.sock)
        self.listeners.remove(listener)
        close_listener(listener)

    def listen(self, host: str, port: int) -> tuple[str, int]:
        """One TCP listener; the bound (host, port)."""
        [listener] = self.open_listeners([ListenerConfig(host=host, port=port)])
        return listener.address[0], listener.address[1]

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop's thread at the start of its next turn; safe from any
        thread and from a signal handler."""
        self.waker.call_soon(callback)

    def request_stop(self) -> None:
        self._stopping = True
        self.waker.wake()

    def abort(self) -> None:
        """Stop at the end of this turn as a killed process would: no DISCONNECT, nothing
        flushed or committed after that turn; the sockets close unannounced, the store is
        left as the turn's commit left it. From any thread."""
        self.aborting = self._stopping = True
        self.waker.wake()

    def run(self) -> None:
        try:
            while not self._stopping:
                self.turn()
            if not self.aborting:
                self._shutdown()
        finally:
            self._close_everything()

    def _shutdown(self, grace: float = 2.0) -> None:
        """Stop accepting, say goodbye (DISCONNECT 0x8B to MQTT 5 clients), flush briefly."""
        for callback in self.on_shutdown:
            try:
                callback()
            except Exception:
                log.exception("error while stopping")
        for listener in self.listeners:
            self.selector.unregister(listener.sock)
            close_listener(listener)
        self.listeners.clear()
        self._read_what_arrived()
        self.core.shutdown(list(self.connections))
        self._flush()
        deadline = time.monotonic() + grace
        while self.connections and time.monotonic() < deadline:
            self.turn(max_wait=0.05)
        self.core.flush()
        for callback in self.on_stopped:
            try:
                callback()
            except Exception:
                log.exception("error while stopping")

    def _read_what_arrived(self, rounds: int = 8) -> None:
        """Before saying goodbye, handle what clients had already sent: an acknowledgement
        waiting in a socket buffer would otherwise be lost, and its message delivered again
        after the restart. A few rounds at most, so a client that keeps sending cannot hold
        the stop up; then commit, and send the acknowledgements this earned."""
        for _ in range(rounds):
            ready = [key.data for key, mask in self.selector.select(0)
                     if mask & selectors.EVENT_READ and isinstance(key.data, Connection)]
            if not ready:
                break
            now = self.core.clock.monotonic()
            for conn in ready:
                self._read(conn, now)
        try:
            self.core.commit()
        except StoreWriteError as error:
            self.core.storage_failed(error, self._handled)
        self._handled.clear()
        self._flush()

    def run_closed(self) -> None:
        """Release everything without having run (a failed start)."""
        self._close_everything()

    def health(self) -> str:
        """"" while healthy, else why not (GET /health answers 503 with it). A loop that is
        stuck does not answer at all: a probe's timeout is the check for that."""
        if self.last_turn_seconds > 5.0:
            return f"the loop's last turn took {self.last_turn_seconds:.1f} s"
        return self.core.health()

    def cut(self, conn: Connection, reason: str, reset: bool = False) -> None:
        """Close ``conn``'s socket now, unflushed, as a lost network would (its will goes);
        ``reset``: with an RST, not a FIN."""
        if reset:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
        self._close_socket(conn, reason)

    def _close_everything(self) -> None:
        self.core.authenticator.close()
        for close in self.on_close:
            close()
        for conn in list(self.connections):
            if self.aborting:  # as the kernel does for a killed process: no session told
                with contextlib.suppress(OSError):
                    conn.sock.close()
            else:
                self._close_socket(conn, "broker stopped")
        for listener in self.listeners:
            close_listener(listener)
        self.selector.close()
        self.waker.close()

    # -- one turn --------------------------------------------------------------------------

    def turn(self, max_wait: float | None = None) -> None:
        core = self.core
        soon = self.waker.soon
        while soon:
            callback = soon.popleft()
            try:
                callback()
            except Exception:  # a bug in it must not stop the broker
                log.exception("error in a callback run on the broker's thread")
        deadline = core.timers.next_deadline()
        system_deadline = core.system_timers.next_deadline()
        flush_by = core.store.flush_deadline()
        if flush_by is not None and (system_deadline is None or flush_by < system_deadline):
            system_deadline = flush_by
        paused = core.paused
        runnable = [conn for conn in self._backlog if conn not in paused]
        tls_ready: list[Connection] = []
        if self._tls_pending:
            tls_ready = [conn for conn in self._tls_pending if conn not in paused]
            self._tls_pending.difference_update(tls_ready)
        timeout = 0.0 if runnable or tls_ready else max_wait
        if deadline is not None:  # the timers' deadlines are on the broker's clock
            until = max(0.0, deadline - core.clock.monotonic())
            timeout = until if timeout is None else min(timeout, until)
        if system_deadline is not None:  # the machine's (I/O, the store's batching)
            until = max(0.0, system_deadline - time.monotonic())
            timeout = until if timeout is None else min(timeout, until)
        events = self.selector.select(timeout)
        started = time.monotonic()
        now = core.clock.monotonic()
        stats = core.stats
        for conn in runnable:
            if conn.open:
                self._watch(conn, read=True, write=conn in self._writing)
            self._handle(conn, conn.reader.feed(b""), now)
        for conn in tls_ready:
            self._read(conn, now)
        for key, mask in events:
            data = key.data
            if data.__class__ is Connection:
                if self._handshaking and data in self._handshaking:
                    self._handshake(data, now)
                    continue
                if mask & selectors.EVENT_READ:
                    self._read(data, now)
                if mask & selectors.EVENT_WRITE:
                    core.dirty.add(data)
            elif data is _WAKER:
                self.waker.woken()
            elif isinstance(data, LoopDriven):  # a plug-in's socket (http, Redis, a bridge)
                self.plugin_io.event(data, mask)
            else:
                self._accept(data, now)
        core.timers.run_due(now)
        core.system_timers.run_due(started)
        try:
            core.commit()
        except StoreWriteError as error:
            core.storage_failed(error, self._handled)
        self._handled.clear()
        self._flush()
        for flush in self.after_flush:
            flush()
        self.last_turn_seconds = spent = time.monotonic() - started
        stats.loop_turn_seconds.observe(spent)

    def _accept(self, listener: Listener, now: float) -> None:
        for _ in range(256):  # bounded, so one busy listener cannot starve the rest
            try:
                sock, address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: keep serving the others
                log.warning("accept failed on %s: %s", listener.name, exc)
                return
            self.core.stats.sockets_total += 1
            if listener.config.http:  # a plug-in's listener type
                sock.setblocking(False)
                acceptor = self.acceptors.get(listener.config.type)
                if acceptor is None or not acceptor(listener, sock,
                                                    f"{address[0]}:{address[1]}", now):
                    sock.close()
                continue
            if listener.full():
                sock.close()
                self.core.stats.connections_refused += 1
                listener.refused(self.core.stats.connections_refused)
                continue
            self.core.stats.connections_total += 1
            sock.setblocking(False)
            if isinstance(listener.address, str):
                peer = f"unix:{listener.address}"
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer = f"{address[0]}:{address[1]}"
            if self.accepted_socket is not None:
                sock = self.accepted_socket(sock)
            if listener.tls is not None:
                sock = wrap(listener.tls, sock)
            conn = self.core.new_connection(sock, peer, now, listener.name)
            if listener.config.websocket:
                conn.websocket = WebSocketTransport(listener.config.path)
            conn.mount_point = listener.config.mount_point
            listener.connections += 1
            conn.accepted_by = listener
            self.connections[conn] = None
            self.selector.register(sock, selectors.EVENT_READ, conn)
            if listener.tls is not None:
                self._handshaking[conn] = listener
                self._handshake(conn, now)

    def _handshake(self, conn: Connection, now: float) -> None:
        """One step of a TLS handshake; a stalled one meets the connect timeout."""
        listener = self._handshaking[conn]
        if not conn.open:  # closed mid-handshake (the connect timeout): nothing to flush
            self._close_socket(conn, conn.close_reason)
            return
        try:
            step = handshake_step(conn.sock)
        except OSError as exc:  # ssl.SSLError included
            del self._handshaking[conn]
            why = getattr(exc, "reason", None) or exc
            detail = getattr(exc, "verify_message", None)  # the certificate's fault, if one
            log.info("TLS handshake with %s on %s failed: %s%s", conn.peer, listener.name, why,
                     f" ({detail})" if detail else "")
            self._close_socket(conn, "TLS handshake failed")
            return
        if step != "done":
            self._watch(conn, read=step == "read", write=step == "write")
            return
        del self._handshaking[conn]
        conn.tls_identity = client_identity(conn.sock, listener.config)
        self._watch(conn, read=True, write=False)
        self._read(conn, now)  # the client's first records may have come with the last step

    def _read(self, conn: Connection, now: float) -> None:
        if not conn.open:
            self._closing.discard_input(conn)
            return
        if conn in self._backlog:
            return  # a backlog is handled first; meanwhile the kernel holds what follows
        sock = conn.sock
        try:
            count = sock.recv_into(self._buffer)
        except WOULD_BLOCK:
            return
        except OSError as exc:
            self._close_socket(conn, f"socket error: {exc.strerror or exc}")
            return
        if count == 0:
            self._close_socket(conn, "connection closed by the client")
            return
        if conn.keepalive:
            conn.deadline = now + 1.5 * conn.keepalive
        self.core.stats.bytes_received += count
        websocket = conn.websocket
        if websocket is None:
            self._handle(conn, conn.reader.feed(self._view[:count]), now)
        else:
            self._handle(conn, conn.reader.feed(websocket.receive(self._view[:count])), now)
            if websocket.to_send:
                self.core.dirty.add(conn)  # the upgrade's answer, a pong
            if websocket.closed is not None and conn.open:
                self.core.drop(conn, websocket.closed)
        if sock.__class__ is ssl.SSLSocket and sock.pending() and conn.open:
            self._tls_pending.add(conn)  # decrypted input select() will not report

    def _handle(self, conn: Connection, packets: Iterator[Packet], now: float) -> None:
        """Handle packets until they run out or the core pauses this connection."""
        core = self.core
        paused = core.paused
        self._handled.add(conn)
        try:
            for packet in packets:
                core.handle_packet(conn, packet, now)
                if not conn.open:
                    break
                if conn in paused:
                    # The rest waits in the reader, and what follows in the kernel: not
                    # watched for reading meanwhile, so that select() does not spin on it.
                    self._backlog.add(conn)
                    self._watch(conn, read=False, write=conn in self._writing)
                    return
        except MQTTError as error:
            core.handle_error(conn, error)
        except StoreWriteError as error:
            core.storage_failed(error, self._handled)
        except Exception:  # a bug must cost this connection, never the broker
            log.exception("internal error handling a packet from %s", conn.peer)
            core.drop(conn, "internal error", ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR)
        self._backlog.discard(conn)

    def _flush(self) -> None:
        """One ``send`` per connection with output; close what is closing and drained."""
        core = self.core
        stats = core.stats
        hard_limit = self.config.output_hard_limit
        dirty = list(core.dirty)
        core.dirty.clear()
        for conn in dirty:
            if conn.state == CLOSED or conn.engine_holds:
                continue  # (held: released into core.dirty when Redis answers)
            websocket = conn.websocket
            if websocket is not None:
                failed = send_framed(conn, websocket, stats)
                if failed is not None:
                    self._close_socket(conn, failed)
                    continue
                if conn.out_size > hard_limit and conn.open:
                    websocket.unsent = b""
                    conn.out_size = 0
                    core.drop(conn, f"output over {hard_limit} bytes: client not reading")
            elif conn.out:  # plain TCP / TLS, inline: every turn's flush runs this
                out = conn.out
                data = out[0] if len(out) == 1 else b"".join(out)
                try:
                    sent = conn.sock.send(data)
                except WOULD_BLOCK:
                    sent = 0
                except OSError as exc:
                    self._close_socket(conn, f"socket error: {exc.strerror or exc}")
                    continue
                stats.bytes_sent += sent
                if sent == len(data):
                    conn.out = NO_OUTPUT
                    conn.out_size = 0
                else:
                    conn.out = [data[sent:]]
                    conn.out_size = len(data) - sent
                    if conn.out_size > hard_limit and conn.open:
                        conn.out = NO_OUTPUT
                        conn.out_size = 0
                        core.drop(conn, f"output over {hard_limit} bytes: client not reading")
            if conn.open:
                self._want_write(conn, bool(conn.out or (websocket and websocket.unsent)))
            elif conn in self._handshaking:  # no TLS session yet: nothing can be sent on it
                self._close_socket(conn, conn.close_reason)
            else:
                self._closing.drain(conn)

    def _want_write(self, conn: Connection, want: bool) -> None:
        if want != (conn in self._writing):
            self._watch(conn, read=conn not in self._backlog, write=want)

    def _watch(self, conn: Connection, *, read: bool, write: bool) -> None:
        set_interest(self.selector, conn.sock, conn, read=read, write=write)
        if write:
            self._writing.add(conn)
        else:
            self._writing.discard(conn)

    def _close_socket(self, conn: Connection, reason: str) -> None:
        if conn.state == CLOSED:
            return
        self.core.socket_closed(conn, reason)
        conn.state = CLOSED
        self.connections.pop(conn, None)
        listener = conn.accepted_by
        if listener is not None:
            conn.accepted_by = None
            listener.connections -= 1
        self._handshaking.pop(conn, None)
        self._tls_pending.discard(conn)
        self._writing.discard(conn)
        self._backlog.discard(conn)
        # Nothing may keep a closed connection alive: not its timers, not its reader (whose
        # stored error's traceback holds the frames that handled it).
        self._closing.closed(conn)
        self.core.deadlines.forget(conn)
        conn.reader.close()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
