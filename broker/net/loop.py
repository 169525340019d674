"""The event loop: the only place that touches sockets and selectors.

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
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from mqlite.protocol import MQTTError, Packet, ReasonCode

from ..config.broker_config import BrokerConfig
from ..config.listener_config import ListenerConfig
from ..engine.connection import CLOSED, NO_OUTPUT, Connection, Framing
from ..engine.core import BrokerCore
from ..engine.linger import LINGER_POLL, LINGER_SECONDS, Closing, all_delivered
from ..engine.store import StoreWriteError
from .listeners import Listener, ListenerError, close_listener, open_listener
from .loop_driven import Acceptor, LoopDriven
from .tls import WOULD_BLOCK, client_identity, handshake_step, wrap
from .websocket import WebSocketTransport

log = logging.getLogger("mqlite.broker")

READ_SIZE = 256 * 1024
PLUGIN_READ_SIZE = 64 * 1024  # a plug-in socket's read (http, Redis)
_WAKER = "waker"


class EventLoop:
    def __init__(self, core: BrokerCore, config: BrokerConfig) -> None:
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
        # Connections closing gracefully (see LINGER_SECONDS), with how far they are.
        self._closing: dict[Connection, Closing] = {}
        # Connections whose packets were handled this turn: their acks wait for the commit.
        self._handled = core.handled
        core.authenticator.post = self.call_soon
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self.selector.register(self._wake_read, selectors.EVENT_READ, _WAKER)
        self._stopping = False
        # Callbacks from other threads or signal handlers, run at the start of the next turn.
        self._soon: deque[Callable[[], None]] = deque()
        # The listener each connection came in on (its count of open connections).
        # TLS connections still in their handshake; and those whose TLS layer holds
        # decrypted input that select() cannot see.
        self._handshaking: dict[Connection, Listener] = {}
        self._tls_pending: set[Connection] = set()
        self._last_refusal_log = 0.0
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

    # -- setup and shutdown ----------------------------------------------------------------

    def open_listeners(self, configs: list[ListenerConfig]) -> list[Listener]:
        """Open every listener, or none: ListenerError naming the one that failed."""
        opened: list[Listener] = []
        try:
            for config in configs:
                opened.append(open_listener(config, self.config.reuse_port))
        except ListenerError:
            for listener in opened:
                close_listener(listener)
            raise
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

    # -- the plug-ins' sockets (loop_driven.SocketIO) --------------------------------------

    def watch(self, sock: Any, driven: LoopDriven, *, write: bool) -> None:
        with contextlib.suppress(ValueError):  # closed meanwhile: nothing to watch
            self._interest(sock, driven, read=True, write=write)

    def unwatch(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def forget(self, sock: Any) -> None:
        self.unwatch(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def receive(self, sock: Any, size: int = PLUGIN_READ_SIZE) -> bytes | None:
        try:
            data: bytes = sock.recv(size)
        except WOULD_BLOCK:
            return None
        return data

    def transmit(self, sock: Any, data: bytes | bytearray) -> int:
        try:
            sent: int = sock.send(data)
        except WOULD_BLOCK:
            return 0
        return sent

    def dial(self, target: str | tuple[str, int]) -> socket.socket:
        if isinstance(target, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        try:
            sock.connect(target)
        except (BlockingIOError, InterruptedError):
            pass  # completes when the socket turns writable (see dialed)
        except OSError:
            sock.close()
            raise
        return sock

    def dialed(self, sock: socket.socket) -> int:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    def secure(self, sock: socket.socket, context: ssl.SSLContext,
               server_hostname: str | None) -> ssl.SSLSocket:
        return context.wrap_socket(sock, server_hostname=server_hostname,
                                   do_handshake_on_connect=False)

    def handshake(self, sock: ssl.SSLSocket) -> str:
        return handshake_step(sock)

    def _plugin_event(self, driven: LoopDriven, mask: int) -> None:
        try:
            driven.event(bool(mask & selectors.EVENT_READ), bool(mask & selectors.EVENT_WRITE))
        except Exception:  # a bug in a plug-in's socket handling must not stop the broker
            log.exception("error in the handling of a plug-in's socket")

    def wake(self) -> None:
        """Interrupt ``select`` from another thread or a signal handler."""
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop's thread at the start of its next turn; safe from any
        thread and from a signal handler (it only appends and wakes)."""
        self._soon.append(callback)
        self.wake()

    def request_stop(self) -> None:
        self._stopping = True
        self.wake()

    def run(self) -> None:
        try:
            while not self._stopping:
                self.turn()
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
            now = time.monotonic()
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
        if self.core.store_error is not None:
            return f"the store failed its last commit: {self.core.store_error}"
        if self.last_turn_seconds > 5.0:
            return f"the loop's last turn took {self.last_turn_seconds:.1f} s"
        for reporter in self.core.reporters:  # the plug-ins' (cluster mode: Redis)
            why = reporter.health()
            if why:
                return why
        return ""

    def _close_everything(self) -> None:
        self.core.authenticator.close()
        for close in self.on_close:
            close()
        for conn in list(self.connections):
            self._close_socket(conn, "broker stopped")
        for listener in self.listeners:
            close_listener(listener)
        self.selector.close()
        self._wake_read.close()
        self._wake_write.close()

    # -- one turn --------------------------------------------------------------------------

    def turn(self, max_wait: float | None = None) -> None:
        core = self.core
        while self._soon:
            callback = self._soon.popleft()
            try:
                callback()
            except Exception:  # a bug in it must not stop the broker
                log.exception("error in a callback run on the broker's thread")
        deadline = core.timers.next_deadline()
        flush_by = core.store.flush_deadline()
        if flush_by is not None and (deadline is None or flush_by < deadline):
            deadline = flush_by
        paused = core.paused
        runnable = [conn for conn in self._backlog if conn not in paused]
        tls_ready: list[Connection] = []
        if self._tls_pending:
            tls_ready = [conn for conn in self._tls_pending if conn not in paused]
            self._tls_pending.difference_update(tls_ready)
        timeout = 0.0 if runnable or tls_ready else max_wait
        if deadline is not None:
            until = max(0.0, deadline - time.monotonic())
            timeout = until if timeout is None else min(timeout, until)
        events = self.selector.select(timeout)
        now = time.monotonic()
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
                with contextlib.suppress(OSError):
                    self._wake_read.recv(4096)
            elif isinstance(data, LoopDriven):  # a plug-in's socket (http, Redis, a bridge)
                self._plugin_event(data, mask)
            else:
                self._accept(data, now)
        core.timers.run_due(now)
        try:
            core.commit()
        except StoreWriteError as error:
            core.storage_failed(error, self._handled)
        self._handled.clear()
        self._flush()
        for flush in self.after_flush:
            flush()
        self.last_turn_seconds = spent = time.monotonic() - now
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
                self._refused(listener)
                continue
            self.core.stats.connections_total += 1
            sock.setblocking(False)
            if isinstance(listener.address, str):
                peer = f"unix:{listener.address}"
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer = f"{address[0]}:{address[1]}"
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
        conn.peer_certificate, conn.certificate_username = client_identity(conn.sock,
                                                                           listener.config)
        self._watch(conn, read=True, write=False)
        self._read(conn, now)  # the client's first records may have come with the last step

    def _refused(self, listener: Listener) -> None:
        self.core.stats.connections_refused += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= 10.0:  # rate limited, as a flood of them may come
            self._last_refusal_log = now
            log.warning("listener %s is at its max_connections (%d): closing new connections "
                        "(%d so far)", listener.name, listener.config.max_connections,
                        self.core.stats.connections_refused)

    def _read(self, conn: Connection, now: float) -> None:
        if not conn.open:
            closing = self._closing.get(conn)
            if closing is not None:
                self._discard_input(conn, closing)
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
                if not self._flush_websocket(conn, websocket, hard_limit):
                    continue
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
            else:
                self._flush_closing(conn)

    def _flush_websocket(self, conn: Connection, websocket: Framing,
                         hard_limit: int) -> bool:
        """Frame and send; False if the socket failed (and is closed)."""
        if not conn.open:
            websocket.close()  # a close frame after the last packets
        self.core.stats.bytes_sent += sum(map(len, conn.out))  # MQTT bytes, before framing
        data = websocket.take(conn.out)
        conn.out = NO_OUTPUT
        if data:
            try:
                sent = conn.sock.send(data)
            except WOULD_BLOCK:
                sent = 0
            except OSError as exc:
                self._close_socket(conn, f"socket error: {exc.strerror or exc}")
                return False
            websocket.unsent = data[sent:]
        conn.out_size = len(websocket.unsent)
        if conn.out_size > hard_limit and conn.open:
            websocket.unsent = b""
            conn.out_size = 0
            self.core.drop(conn, f"output over {hard_limit} bytes: client not reading")
        return True

    def _flush_closing(self, conn: Connection) -> None:
        if conn in self._handshaking:  # no TLS session yet: nothing can be sent on it
            self._close_socket(conn, conn.close_reason)
            return
        closing = self._closing.get(conn)
        if closing is None:
            deadline = time.monotonic() + self.config.close_timeout
            timer = self.core.timers.call_at(deadline, self._give_up, conn)
            closing = self._closing[conn] = Closing(deadline, timer)
        if conn.out or (conn.websocket is not None and conn.websocket.unsent):
            self._watch(conn, read=not closing.peer_done, write=True)
            return
        if closing.lingering:
            return
        # The last byte is out: shut the write side, so the peer reads an end of stream.
        if closing.peer_done:  # nothing unread can arrive: closing now resets nothing
            self._close_socket(conn, conn.close_reason)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:  # the peer is gone already
            self._close_socket(conn, conn.close_reason)
            return
        self._watch(conn, read=True, write=False)
        closing.lingering = True
        closing.timer.cancel()
        now = time.monotonic()
        closing.timer = self.core.timers.call_at(min(now + LINGER_SECONDS, closing.deadline),
                                                 self._give_up, conn)
        closing.poll = self.core.timers.call_at(now + LINGER_POLL, self._poll_linger, conn)

    def _poll_linger(self, conn: Connection) -> None:
        closing = self._closing.get(conn)
        if closing is None:
            return
        if all_delivered(conn.sock):
            self._close_socket(conn, conn.close_reason)
        else:
            closing.poll = self.core.timers.call_at(time.monotonic() + LINGER_POLL,
                                                    self._poll_linger, conn)

    def _discard_input(self, conn: Connection, closing: Closing) -> None:
        try:
            count = conn.sock.recv_into(self._buffer)
        except WOULD_BLOCK:
            return
        except OSError:
            count = 0
        if count:
            return
        if closing.lingering:  # the peer read everything and closed: so do we
            self._close_socket(conn, conn.close_reason)
        else:  # it sends no more; our last packets are still going out
            closing.peer_done = True
            self._watch(conn, read=False, write=True)

    def _give_up(self, conn: Connection) -> None:
        """The close timeout (or the linger) is over: close, whatever is left unsent."""
        self._close_socket(conn, conn.close_reason)

    def _want_write(self, conn: Connection, want: bool) -> None:
        if want != (conn in self._writing):
            self._watch(conn, read=conn not in self._backlog, write=want)

    def _interest(self, sock: socket.socket, data: object, *, read: bool,
                  write: bool) -> None:
        """What the selector reports for ``sock``, registering it if it is not yet."""
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        if not events:  # a selector takes no empty interest: out of it until wanted again
            with contextlib.suppress(KeyError):
                self.selector.unregister(sock)
        else:
            try:
                self.selector.modify(sock, events, data)
            except KeyError:
                self.selector.register(sock, events, data)

    def _watch(self, conn: Connection, *, read: bool, write: bool) -> None:
        self._interest(conn.sock, conn, read=read, write=write)
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
        closing = self._closing.pop(conn, None)
        if closing is not None:
            closing.timer.cancel()
            if closing.poll is not None:
                closing.poll.cancel()
        self.core.deadlines.forget(conn)
        conn.reader.close()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
