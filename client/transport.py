"""The client's only socket code: opening connections, reading, writing, waiting, waking.

Everything here is a small function over a socket so the client above it stays free of I/O
details, and so an application's own event loop sees exactly one non-blocking socket.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
from typing import Any

from .websocket import WOULD_BLOCK, WebSocketStream

READ_SIZE = 65536

# What a read or write can raise that means "the connection is gone".
CONNECTION_ERRORS = OSError  # ConnectionError and ssl.SSLError among them


def open_connection(
    host: str,
    port: int,
    timeout: float,
    bind_address: str = "",
    bind_port: int = 0,
    tls_context: ssl.SSLContext | None = None,
    transport: str = "tcp",
    ws_path: str = "/mqtt",
    ws_headers: dict[str, str] | None = None,
) -> Any:
    """Connect (blocking, at most ``timeout`` seconds per step) and return the socket, set
    non-blocking (for "websockets", a :class:`WebSocketStream` over it, upgraded). Raises
    ``OSError`` (e.g. ``ConnectionRefusedError``) on failure."""
    sock: Any
    if transport == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(host)
        except BaseException:
            sock.close()
            raise
    else:
        source = (bind_address, bind_port) if bind_address or bind_port else None
        sock = socket.create_connection((host, port), timeout=timeout, source_address=source)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_context is not None:
        try:
            sock = tls_context.wrap_socket(
                sock, server_hostname=host if tls_context.check_hostname else None
            )
        except BaseException:
            sock.close()
            raise
    if transport == "websockets":
        try:
            sock = WebSocketStream(sock, f"{host}:{port}", ws_path, ws_headers)
        except BaseException:
            sock.close()
            raise
    sock.setblocking(False)
    return sock


def receive(sock: Any, buffer: bytearray) -> int:
    """Read what is there into ``buffer``: the byte count, 0 at end of stream, -1 if nothing
    is available now."""
    try:
        return int(sock.recv_into(buffer))
    except WOULD_BLOCK:
        return -1


def tls_pending(sock: Any) -> int:
    """Bytes read that select() cannot see: decrypted ones an ``SSLSocket`` holds, or the
    payloads a WebSocket stream has taken out of its frames."""
    return sock.pending() if isinstance(sock, ssl.SSLSocket | WebSocketStream) else 0


def unsent(sock: Any) -> bool:
    """Whether a WebSocket stream holds framed bytes its socket did not take yet."""
    return isinstance(sock, WebSocketStream) and bool(sock.unsent)


def flush(sock: Any) -> None:
    """Write what a WebSocket stream holds, as far as the socket takes it."""
    if isinstance(sock, WebSocketStream):
        sock.flush()


def send(sock: Any, data: bytes | bytearray | memoryview) -> int:
    """Write what the socket takes now; the byte count (0 if it would block)."""
    try:
        return int(sock.send(data))
    except WOULD_BLOCK:
        return 0


def close(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class Waker:
    """A socket pair that interrupts ``wait()`` from another thread."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def wake(self) -> None:
        # BlockingIOError: already awake; OSError: closed.
        with contextlib.suppress(BlockingIOError, OSError):
            self._writer.send(b"\x00")

    def drain(self) -> None:
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def fileno(self) -> int:
        return self._reader.fileno()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Poller:
    """Waits on one client socket and a :class:`Waker`, keeping one selector across calls."""

    def __init__(self, waker: Waker) -> None:
        self.waker = waker
        self._selector = selectors.DefaultSelector()
        self._selector.register(waker.fileno(), selectors.EVENT_READ)
        self._sock: socket.socket | None = None
        self._events = 0

    def wait(
        self, sock: socket.socket | None, want_write: bool, timeout: float
    ) -> tuple[bool, bool]:
        """Sleep until ``sock`` is readable (or writable, if ``want_write``), the waker is
        woken, or ``timeout`` passes. Returns (readable, writable)."""
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
        if sock is not self._sock or (sock is not None and sock.fileno() < 0):
            self._forget()
            if sock is not None and sock.fileno() >= 0:
                self._selector.register(sock, events)
                self._sock, self._events = sock, events
        elif sock is not None and events != self._events:
            self._selector.modify(sock, events)
            self._events = events
        if sock is not None and tls_pending(sock):
            timeout = 0
        readable = writable = False
        for key, mask in self._selector.select(max(timeout, 0)):
            if key.fileobj is self._sock:
                readable = bool(mask & selectors.EVENT_READ)
                writable = bool(mask & selectors.EVENT_WRITE)
            else:
                self.waker.drain()
        return readable, writable

    def _forget(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(self._sock)
            self._sock = None

    def close(self) -> None:
        self._forget()
        self._selector.close()
