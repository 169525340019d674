"""The embeddable broker: ``Broker(...).serve_forever()``, or ``start()`` / ``stop()`` around a
background thread, or ``with Broker(port=0) as broker: ...``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .bridge.bridge import Bridge
from .bridge.stats import BridgeReporter
from .cluster.config import ClusterConfig, default_node_id
from .config.broker_config import BrokerConfig
from .engine.clock import Clock
from .engine.connection import Connection
from .engine.core import BrokerCore
from .engine.store import MemoryStore, SessionStore
from .hooks import Hook, Hooks
from .http.service import HttpService
from .net.listeners import ListenerError
from .net.loop import AcceptedSocket, EventLoop
from .net.waker import Waker
from .reload import apply_config
from .security.access_control import AccessControl
from .security.access_control import configured as access_configured
from .security.acl_file import AclFileError
from .security.authentication import PasswordAuthentication
from .security.authentication import configured as authentication_configured
from .security.password_file import PasswordFileError
from .security.scram_auth import ScramAuthentication
from .storage.sqlite_store import SQLiteStore

if TYPE_CHECKING:
    from .cluster.store import RedisStore

CLUSTER_NEEDS = "cluster mode needs hiredis: pip install 'mqlite[cluster]'"


def _redis_store() -> type[RedisStore]:
    """The cluster's session store, imported only in cluster mode (hiredis is optional)."""
    try:
        from .cluster.store import RedisStore
    except ImportError:
        raise ImportError(CLUSTER_NEEDS) from None
    return RedisStore

log = logging.getLogger("mqlite.broker")


class Broker:
    """An MQTT 3.1.1/5.0 broker. Keyword settings are those of :class:`BrokerConfig`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *,
                 db: str | None = None, sync: str = "full", store: SessionStore | None = None,
                 config: BrokerConfig | None = None, hooks: Iterable[Hook] = (),
                 clock: Clock | None = None,
                 accepted_socket: AcceptedSocket | None = None,
                 **settings: Any) -> None:
        """``db``: a SQLite file for persistent sessions and retained messages (created 0600);
        without it (or with ``":memory:"``) they live in memory only. ``sync``: ``"full"``
        survives power loss, ``"normal"`` survives a process crash and is faster. ``store``: any
        other :class:`SessionStore`. ``hooks``: :class:`Hook` instances, run in order on the
        broker's thread (a slow hook stalls every client). ``clock``: what its deadlines read
        the time from (keep alive, expiry, will delay); ``mqlite.testing`` moves one ahead.
        ``accepted_socket``: what each accepted MQTT socket is replaced with (``mqlite.testing``
        gives sockets that misbehave on demand)."""
        self.config = config if config is not None else BrokerConfig(host=host, port=port,
                                                                      **settings)
        # Cluster mode: the stream entries a turn delivered, acknowledged by the store with
        # the session writes they caused, or by the node.
        self._stream_acks: Any = None
        if store is None and self.config.cluster is not None:
            cluster = self.config.cluster
            from .cluster.acks import StreamAcks

            self._stream_acks = StreamAcks()
            # The sessions are in Redis, so that they can move between nodes (the node id is
            # the store's once the node has joined, when the bound port has named it).
            store = _redis_store()(cluster.address, cluster.node_id,
                                   timeout=min(5.0, max(1.0, cluster.node_ttl)),
                                   wait_replicas=cluster.wait_replicas,
                                   wait_timeout=cluster.wait_timeout,
                                   acks=self._stream_acks)
        if store is None:
            store = SQLiteStore(db, sync) if db not in (None, ":memory:") else MemoryStore()
        self.store: SessionStore = store
        self.clock = clock if clock is not None else Clock()
        self._accepted_socket = accepted_socket
        self._hooks = Hooks(hooks)
        # The built-in authentication and access control, before the application's hooks,
        # installed only where they are configured (the hot path stays hook-free otherwise).
        self._authentication: PasswordAuthentication | None = None
        self._access: AccessControl | None = None
        self._scram: ScramAuthentication | None = None
        self._loop: EventLoop | None = None
        self.bridges: list[Bridge] = []
        self._install_security(self.config)
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None
        self._addresses: dict[str, Any] = {}
        # A stop() that came before the loop existed (a signal during start-up).
        self._stop_requested = False

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with port 0, the port the system picked."""
        if self._address is None:
            raise RuntimeError("the broker is not listening yet")
        return self._address

    @property
    def addresses(self) -> dict[str, Any]:
        """Every listener's bound address by listener name: (host, port), or a unix socket's
        path."""
        return dict(self._addresses)

    @property
    def loop(self) -> EventLoop:
        """The running event loop (touch it only on its thread: see :meth:`call_soon`)."""
        if self._loop is None:
            raise RuntimeError("the broker is not running")
        return self._loop

    @property
    def core(self) -> BrokerCore:
        """The broker's state (sessions, retained messages, counters), for inspection."""
        if self._loop is None:
            raise RuntimeError("the broker is not running")
        return self._loop.core

    @property
    def connections(self) -> tuple[Connection, ...]:
        """The open connections, for inspection (a snapshot)."""
        if self._loop is None:
            return ()
        return tuple(self._loop.connections)  # copied in C under the GIL: thread-safe

    def _open(self) -> EventLoop:
        if self._loop is not None:
            raise RuntimeError("the broker is already running")
        waker = Waker()
        loop = EventLoop(BrokerCore(self.config, self.store, self._hooks, self._scram,
                                    post=waker.call_soon, clock=self.clock), self.config, waker)
        # The http side (metrics, admin API, status page) on the loop's own selector.
        http = HttpService(loop, loop.plugin_io)
        loop.acceptors["http"] = http.accept
        loop.after_flush.append(http.flush)
        loop.on_close.append(http.close_all)
        loop.accepted_socket = self._accepted_socket
        self._loop = loop  # before listening: from the first connection on, stop() reaches it
        try:
            listeners = loop.open_listeners(self.config.effective_listeners())
        except ListenerError:
            self._loop = None
            loop.run_closed()
            raise
        self._addresses = {listener.name: listener.address for listener in listeners}
        self._bind_authentication()
        inet = [listener.address for listener in listeners
                if not isinstance(listener.address, str)]
        self._address = (inet[0][0], inet[0][1]) if inet else None
        for listener in listeners:
            log.info("mqlite broker listening on %s (%s)", listener.where(), listener.name)
        if self.config.cluster is not None:
            self._join_cluster(loop, self.config.cluster)
        bridges = BridgeReporter(loop.core.sessions)
        loop.core.reporters.append(bridges)
        self.bridges = [Bridge(config, loop.core, loop.plugin_io, bridges)
                        for config in self.config.bridges]
        for bridge in self.bridges:
            loop.call_soon(bridge.start)
            loop.on_shutdown.append(bridge.stop)
        if self._stop_requested:
            loop.request_stop()
        return loop

    def _join_cluster(self, loop: EventLoop, config: ClusterConfig) -> None:
        port = self._address[1] if self._address is not None else 0
        config = config.checked(default_node_id(port))
        from .cluster.node import ClusterNode  # cluster mode only: hiredis is optional
        from .cluster.reporter import ClusterReporter

        store = self.store if isinstance(self.store, _redis_store()) else None
        node = ClusterNode(loop.core, loop.plugin_io, config, on_fenced=loop.request_stop,
                           store=store, acks=self._stream_acks)
        loop.core.join(node)
        reporter = ClusterReporter(node)
        loop.core.reporters.append(reporter)
        loop.call_soon(node.start)
        loop.on_stopped.append(node.stop)

    def serve_forever(self) -> None:
        """Run in this thread until :meth:`stop` (from another thread or a signal handler)."""
        loop = self._loop or self._open()
        try:
            loop.run()
        finally:
            if loop.aborting:
                self.store.abandon()
            else:
                self.store.close()
            self._loop = None
            self._stop_requested = False
            log.info("mqlite broker stopped")

    def start(self) -> tuple[str, int]:
        """Listen, run in a background thread, and return the bound address."""
        self._open()
        self._thread = threading.Thread(target=self.serve_forever, name="mqlite-broker",
                                        daemon=True)
        self._thread.start()
        return self.address

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully: stop accepting, DISCONNECT 0x8B to MQTT 5 clients, flush, close."""
        loop = self._loop
        if loop is None:
            self._stop_requested = True  # honoured as soon as the loop exists
        else:
            loop.request_stop()
        self._join(timeout)

    def _join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError("the broker did not stop in time")
            self._thread = None

    def kill(self, timeout: float = 10.0) -> None:
        """Stop as ``kill -9`` would, for tests of what survives a crash: no DISCONNECT,
        nothing flushed or committed after the current loop turn, every socket closed
        unannounced, the store left as its last commit left it. A broker started again on
        the same store finds what a restarted process would."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the broker is not running")
        loop.abort()
        self._join(timeout)

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the broker's thread at the start of its next loop turn; safe
        from other threads and from signal handlers."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the broker is not running")
        loop.call_soon(callback)

    def reload(self, config: BrokerConfig) -> None:
        """Apply ``config`` without dropping connections (see broker/reload.py): limits from
        now on, listeners opened and closed by difference, TLS certificates read again."""
        def apply() -> None:
            assert self._loop is not None
            self.config = config
            apply_config(self._loop, config)
            self._addresses = {listener.name: listener.address
                               for listener in self._loop.listeners}
            for builtin in (self._authentication, self._access, self._scram):
                if builtin is not None:
                    builtin.reload(config)
            try:
                self._install_security(config)
            except (PasswordFileError, AclFileError) as exc:
                log.error("reload: %s; that check stays off", exc)
            self._bind_authentication()

        self.call_soon(apply)

    def _install_security(self, config: BrokerConfig) -> None:
        """Install the built-in hooks a configuration needs and are not installed yet."""
        if self._access is None and access_configured(config):
            self._access = AccessControl(config)
            self._hooks.insert_first(self._access)
        if self._authentication is None and authentication_configured(config):
            self._authentication = PasswordAuthentication(config)
            self._hooks.insert_first(self._authentication)  # authentication runs first
        if self._scram is None and config.scram_file is not None:
            self._scram = ScramAuthentication(config)
            if self._loop is not None:
                self._loop.core.scram = self._scram

    def _bind_authentication(self) -> None:
        if self._loop is None:
            return
        names = {listener.name: listener.config for listener in self._loop.listeners}
        for builtin in (self._authentication, self._access):
            if builtin is not None:
                builtin.bind(names)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
