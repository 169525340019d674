"""Opening and closing listening sockets (TCP, TLS, WebSocket, unix), each with its settings.
The event loop accepts on them; this module only makes and releases them."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import ssl
import stat
import time
from typing import Any

from ..config.listener_config import ListenerConfig

log = logging.getLogger("mqlite.broker")

# Connections the kernel completes and holds until the loop accepts them (capped by
# net.core.somaxconn). A burst of connects beyond it has its SYNs dropped, and each dropped
# client waits a second to retry: 5,000 clients connecting at once saw that with 1,024.
LISTEN_BACKLOG = 4096

_TLS_VERSIONS = {"tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}


class ListenerError(OSError):
    """A listener cannot be opened; the message is one line naming it and the problem."""


class Listener:
    """One listening socket: its settings, its TLS context, and its connections."""

    __slots__ = ("address", "config", "connections", "name", "refusal_logged", "sock", "tls")

    def __init__(self, config: ListenerConfig, sock: socket.socket, address: Any,
                 tls: ssl.SSLContext | None) -> None:
        self.config = config
        self.sock = sock
        self.address = address  # (host, port), or the unix socket's path
        self.tls = tls
        self.name = config.name or config.default_name(address[1])
        self.connections = 0  # open now, against max_connections
        self.refusal_logged = 0.0  # when a refusal was last logged (monotonic)

    def full(self) -> bool:
        limit = self.config.max_connections
        return limit != -1 and self.connections >= limit

    def refused(self, refused_total: int) -> None:
        """A connection was closed because this listener is full: logged, rate limited (a
        flood of them may come)."""
        now = time.monotonic()
        if now - self.refusal_logged >= 10.0:
            self.refusal_logged = now
            log.warning("listener %s is at its max_connections (%d): closing new connections "
                        "(%d so far)", self.name, self.config.max_connections, refused_total)

    def where(self) -> str:
        address = self.address
        if isinstance(address, str):
            return address
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_listener(config: ListenerConfig, reuse_port: bool = False) -> Listener:
    """Bind and listen; ListenerError naming the listener if it cannot be done.
    ``reuse_port``: SO_REUSEPORT on a TCP listener, so that other processes may share it."""
    label = config.name or config.type
    tls = tls_context(config) if config.tls else None
    try:
        if config.type == "unix":
            assert config.path is not None
            sock = _unix_socket(config.path)
            address: Any = config.path
        else:
            host = config.host
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            dualstack = (family == socket.AF_INET6 and host in ("::", "")
                         and socket.has_dualstack_ipv6())
            # SO_REUSEADDR (create_server's default on POSIX): a restart binds at once.
            sock = socket.create_server((host, config.port), family=family, backlog=LISTEN_BACKLOG,
                                        dualstack_ipv6=dualstack, reuse_port=reuse_port)
            address = sock.getsockname()
    except OSError as exc:
        where = config.path if config.type == "unix" else f"{config.host}:{config.port}"
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.EADDRINUSE:
            why += " (another broker, or another program, listens there)"
        raise ListenerError(f"listener {label}: cannot listen on {where}: {why}") from None
    sock.setblocking(False)
    return Listener(config, sock, address, tls)


def _unix_socket(path: str) -> socket.socket:
    """A unix socket file with mode 0660; a stale socket file left by a killed broker is
    replaced, any other file is not."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # nobody listens on it: left by a broker that was killed
        else:
            raise OSError("another process is listening on it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_mask = os.umask(0o117)  # created 0660, never briefly wider
        try:
            sock.bind(path)
        finally:
            os.umask(old_mask)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def open_listeners(configs: list[ListenerConfig], reuse_port: bool) -> list[Listener]:
    """Open every listener, or none: ListenerError naming the one that failed."""
    opened: list[Listener] = []
    try:
        for config in configs:
            opened.append(open_listener(config, reuse_port))
    except ListenerError:
        for listener in opened:
            close_listener(listener)
        raise
    return opened


def close_listener(listener: Listener) -> None:
    listener.sock.close()
    if isinstance(listener.address, str):  # a unix socket: its file goes with it
        with contextlib.suppress(OSError):
            os.unlink(listener.address)


def tls_context(config: ListenerConfig) -> ssl.SSLContext:
    """The server-side context of a tls / wss listener; ListenerError naming the file that
    cannot be used."""
    label = config.name or config.type
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[config.tls_version]
    try:
        assert config.certfile is not None
        context.load_cert_chain(config.certfile, config.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ListenerError(f"listener {label}: cannot use certfile {config.certfile} / keyfile "
                            f"{config.keyfile}: {_why(exc)}") from None
    if config.cafile or config.capath:
        try:
            context.load_verify_locations(cafile=config.cafile, capath=config.capath)
        except (OSError, ssl.SSLError) as exc:
            raise ListenerError(f"listener {label}: cannot use cafile/capath "
                                f"{config.cafile or config.capath}: {_why(exc)}") from None
        context.verify_mode = (ssl.CERT_REQUIRED if config.require_certificate
                               else ssl.CERT_OPTIONAL)
    if config.crlfile:
        try:
            context.load_verify_locations(cafile=config.crlfile)
        except (OSError, ssl.SSLError) as exc:
            raise ListenerError(f"listener {label}: cannot use crlfile {config.crlfile}: "
                                f"{_why(exc)}") from None
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    if config.ciphers:
        try:
            context.set_ciphers(config.ciphers)
        except ssl.SSLError as exc:
            raise ListenerError(f"listener {label}: ciphers {config.ciphers!r}: "
                                f"{_why(exc)}") from None
    return context


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
