"""One connection to Redis, driven by the broker's event loop: RESP encoded with hiredis's
``pack_command`` and parsed with its ``Reader``, on a socket the loop owns. No threads and no
blocking: a command queues its bytes and a callback; the bytes of a whole loop turn leave in
one write (:meth:`RedisLink.flush`), and each reply calls its command's callback in order.

A link in subscriber mode hands every reply (the channel messages) to ``on_push`` instead.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis

from ..net.loop_driven import LoopDriven, SocketIO
from .config import RedisAddress

log = logging.getLogger("mqlite.cluster")

Reply = Any  # bytes, int, list, None, hiredis.ReplyError, or LOST
Callback = Callable[[Reply], None]


class _Lost:
    """The reply a command gets when its link was lost before Redis answered it: whether
    Redis carried it out is unknown."""

    def __repr__(self) -> str:
        return "LOST"


LOST = _Lost()


def failed(reply: Reply) -> bool:
    return reply is LOST or isinstance(reply, hiredis.ReplyError)


CONNECTING, HANDSHAKING, READY, CLOSED = "connecting", "handshaking", "ready", "closed"


class RedisLink(LoopDriven):
    """A connection that is opened once; a lost one is replaced by a new link."""

    def __init__(self, io: SocketIO, address: RedisAddress, name: str,
                 on_ready: Callable[[RedisLink], None],
                 on_lost: Callable[[RedisLink, str], None],
                 on_push: Callable[[Reply], None] | None = None) -> None:
        self.io = io
        self.address = address
        self.name = name
        self.on_ready = on_ready
        self.on_lost = on_lost
        self.on_push = on_push  # set: a subscriber link
        self.state = CONNECTING
        self._reader = hiredis.Reader()
        self._out: list[bytes] = []
        self._unsent = b""
        self._callbacks: deque[Callback | None] = deque()
        # (commands issued when it was asked, callback): run once all those are answered.
        self._barriers: deque[tuple[int, Callable[[bool], None]]] = deque()
        self._issued = 0
        self._answered = 0
        self._setup_pending = 0
        self.sock = io.dial(address.path if address.path is not None
                            else (address.host, address.port))
        io.watch(self.sock, self, write=True)

    # -- commands --------------------------------------------------------------------------

    def command(self, *args: Any, reply: Callback | None = None) -> None:
        """Queue a command; ``reply`` gets its answer (or LOST)."""
        self._out.append(hiredis.pack_command(args))
        self._callbacks.append(reply)
        self._issued += 1

    def push_command(self, *args: Any) -> None:
        """Queue a command whose replies go to ``on_push`` (SUBSCRIBE on a subscriber link)."""
        self._out.append(hiredis.pack_command(args))

    def after_replies(self, callback: Callable[[bool], None]) -> None:
        """``callback(True)`` once every command queued so far is answered; ``False`` if the
        link is lost first."""
        if self._answered >= self._issued:
            callback(self.state == READY)
        else:
            self._barriers.append((self._issued, callback))

    @property
    def busy(self) -> bool:
        """Commands are queued that are not answered yet."""
        return self._answered < self._issued

    def flush(self) -> None:
        """Send what the turn queued, in one write."""
        if self.state != READY or not (self._out or self._unsent):
            return
        data = self._unsent + b"".join(self._out)
        self._out.clear()
        try:
            sent = self.io.transmit(self.sock, data)
        except OSError as exc:
            self.lose(f"write failed: {exc.strerror or exc}")
            return
        self._unsent = data[sent:]
        self.io.watch(self.sock, self, write=bool(self._unsent))

    # -- the loop's events -----------------------------------------------------------------

    def event(self, readable: bool, writable: bool) -> None:
        if self.state == CONNECTING:
            if writable:
                self._connected()
            return
        if self.state == HANDSHAKING:
            self._handshake()
            return
        if readable:
            self._read()
        if writable and self.state == READY:
            self.flush()

    def _connected(self) -> None:
        error = self.io.dialed(self.sock)
        if error:
            self.lose(f"cannot connect to {self.address}: {os.strerror(error)}")
            return
        if self.address.tls:
            try:
                context = ssl.create_default_context(cafile=self.address.ca_file)
                self.sock = self.io.secure(self.sock, context, self.address.host)
            except OSError as exc:
                self.lose(f"TLS to {self.address}: {exc}")
                return
            self.state = HANDSHAKING
            self._handshake()
            return
        self._start()

    def _handshake(self) -> None:
        try:
            step = self.io.handshake(self.sock)
        except OSError as exc:
            self.lose(f"TLS handshake with {self.address} failed: "
                      f"{getattr(exc, 'reason', None) or exc}")
            return
        if step == "done":
            self._start()
        else:
            self.io.watch(self.sock, self, write=step == "write")

    def _start(self) -> None:
        """Connected: authenticate and choose the database first, ahead of any command."""
        self.state = READY
        setup: list[tuple[Any, ...]] = []
        address = self.address
        if address.password is not None:
            setup.append(("AUTH", address.username, address.password) if address.username
                         else ("AUTH", address.password))
        if address.db:
            setup.append(("SELECT", address.db))
        self._setup_pending = len(setup)
        queued, callbacks = self._out, self._callbacks
        self._out, self._callbacks = [], deque()
        for args in setup:
            self.command(*args, reply=self._setup_answered)
        self._out.extend(queued)
        self._callbacks.extend(callbacks)
        self.io.watch(self.sock, self, write=False)
        if not setup:
            self.on_ready(self)
        self.flush()

    def _setup_answered(self, reply: Reply) -> None:
        if failed(reply):
            self.lose(f"Redis at {self.address} refused the connection's set-up: {reply}")
            return
        self._setup_pending -= 1
        if not self._setup_pending:
            self.on_ready(self)

    def _read(self) -> None:
        while self.state == READY:
            try:
                data = self.io.receive(self.sock)
            except OSError as exc:
                self.lose(f"read failed: {exc.strerror or exc}")
                return
            if data is None:
                return
            if not data:
                self.lose("Redis closed the connection")
                return
            reader = self._reader
            reader.feed(data)
            try:
                while self.state == READY:
                    reply = reader.gets()
                    if reply is False:
                        break
                    self._dispatch(reply)
            except hiredis.ProtocolError as exc:
                self.lose(f"bad reply from Redis: {exc}")
                return
            # TLS may hold decrypted bytes that select() does not report: read them now.
            pending = getattr(self.sock, "pending", None)
            if pending is None or not pending():
                return

    def _dispatch(self, reply: Reply) -> None:
        if self.on_push is not None and not self._callbacks:
            _guarded(self.on_push, reply)
            return
        callback = self._callbacks.popleft()
        self._answered += 1
        if callback is not None:
            _guarded(callback, reply)
        barriers = self._barriers
        while barriers and barriers[0][0] <= self._answered:
            _guarded(barriers.popleft()[1], True)

    # -- the end ---------------------------------------------------------------------------

    def lose(self, reason: str) -> None:
        """Close; every command not answered gets LOST, every barrier False."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.io.forget(self.sock)
        callbacks, self._callbacks = self._callbacks, deque()
        barriers, self._barriers = self._barriers, deque()
        self._out.clear()
        for callback in callbacks:
            if callback is not None:
                callback(LOST)
        for _, barrier in barriers:
            barrier(False)
        self.on_lost(self, reason)

    def close(self) -> None:
        """Closed on purpose (the broker stops): no on_lost."""
        self.on_lost = _ignore_loss
        self.lose("closed")


def _ignore_loss(link: RedisLink, reason: str) -> None:
    del link, reason


def _guarded(callback: Callable[[Any], None], value: Any) -> None:
    """A reply's handler that fails costs that reply, never the broker's loop."""
    try:
        callback(value)
    except Exception:
        log.exception("internal error handling a Redis reply")
