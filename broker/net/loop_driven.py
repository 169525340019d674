"""What the event loop offers the plug-ins that own a socket of their own (the http side, the
cluster's Redis links, a bridge's remote client): they register it with a ``LoopDriven``
object, which the loop tells when the socket is readable or writable, and they make their
socket calls through ``SocketIO`` (plugin_sockets.py, on the loop's selector), so that
sockets stay in net/ and the loop never names a plug-in."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, Protocol


class LoopDriven:
    """Registered with the loop's selector as the socket's ``data``."""

    __slots__ = ()

    def event(self, readable: bool, writable: bool) -> None:
        raise NotImplementedError


class SocketIO(Protocol):
    """The socket calls a plug-in makes (net/ makes them)."""

    def watch(self, sock: Any, driven: LoopDriven, *, write: bool) -> None:
        """Register (or re-register) ``sock`` for reading, and for writing if ``write``."""

    def unwatch(self, sock: Any) -> None:
        """Unregister ``sock`` (its owner closes it)."""

    def forget(self, sock: Any) -> None:
        """Unregister and close."""

    def receive(self, sock: Any, size: int = 65536) -> bytes | None:
        """What came (b"" at the end of the stream), None if nothing did; OSError if
        broken."""

    def transmit(self, sock: Any, data: bytes | bytearray) -> int:
        """Bytes written (0 if the socket is full); OSError if broken."""

    def dial(self, target: str | tuple[str, int]) -> Any:
        """A non-blocking socket connecting to a unix socket's path or (host, port); OSError
        if it cannot even start."""

    def dialed(self, sock: Any) -> int:
        """0 once connected, else the errno of the failed connect."""

    def secure(self, sock: Any, context: ssl.SSLContext, server_hostname: str | None) -> Any:
        """The socket wrapped in TLS (its handshake still to do)."""

    def handshake(self, sock: Any) -> str:
        """One TLS handshake step: "done", "read" or "write"; OSError if it failed."""


# What a plug-in's listener type (http) does with an accepted socket, non-blocking: take it,
# or say False (the loop closes it). Arguments: the listener, the socket, the peer
# ("address:port") and the time.
Acceptor = Callable[[Any, Any, str, float], bool]
