"""The socket calls of the plug-ins that own a socket (loop_driven.SocketIO), made on the
event loop's selector, and how the loop tells their ``LoopDriven`` objects of readiness."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
from collections.abc import Callable
from typing import Any

from .loop_driven import LoopDriven
from .tls import WOULD_BLOCK, handshake_step

log = logging.getLogger("mqlite.broker")

PLUGIN_READ_SIZE = 64 * 1024  # a plug-in socket's read (http, Redis)


def set_interest(selector: selectors.BaseSelector, sock: Any, data: object, *, read: bool,
                 write: bool) -> None:
    """What the selector reports for ``sock``, registering it if it is not yet."""
    events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
    if not events:  # a selector takes no empty interest: out of it until wanted again
        with contextlib.suppress(KeyError):
            selector.unregister(sock)
    else:
        try:
            selector.modify(sock, events, data)
        except KeyError:
            selector.register(sock, events, data)


class PluginSockets:
    def __init__(self, selector: selectors.BaseSelector,
                 call_soon: Callable[[Callable[[], None]], None]) -> None:
        """``call_soon``: the loop's, run a callback on its thread (for a bridge's client)."""
        self._selector = selector
        self.call_soon = call_soon

    @staticmethod
    def event(driven: LoopDriven, mask: int) -> None:
        try:
            driven.event(bool(mask & selectors.EVENT_READ), bool(mask & selectors.EVENT_WRITE))
        except Exception:  # a bug in a plug-in's socket handling must not stop the broker
            log.exception("error in the handling of a plug-in's socket")

    def watch(self, sock: Any, driven: LoopDriven, *, write: bool) -> None:
        with contextlib.suppress(ValueError):  # closed meanwhile: nothing to watch
            set_interest(self._selector, sock, driven, read=True, write=write)

    def unwatch(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def forget(self, sock: Any) -> None:
        self.unwatch(sock)
        with contextlib.suppress(OSError):
            sock.close()

    @staticmethod
    def receive(sock: Any, size: int = PLUGIN_READ_SIZE) -> bytes | None:
        try:
            data: bytes = sock.recv(size)
        except WOULD_BLOCK:
            return None
        return data

    @staticmethod
    def transmit(sock: Any, data: bytes | bytearray) -> int:
        try:
            sent: int = sock.send(data)
        except WOULD_BLOCK:
            return 0
        return sent

    @staticmethod
    def dial(target: str | tuple[str, int]) -> socket.socket:
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

    @staticmethod
    def dialed(sock: socket.socket) -> int:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    @staticmethod
    def secure(sock: socket.socket, context: ssl.SSLContext,
               server_hostname: str | None) -> ssl.SSLSocket:
        return context.wrap_socket(sock, server_hostname=server_hostname,
                                   do_handshake_on_connect=False)

    @staticmethod
    def handshake(sock: ssl.SSLSocket) -> str:
        return handshake_step(sock)
