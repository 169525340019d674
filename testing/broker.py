"""The test broker: a real mqlite broker in the test's process, on a free port, which records
what it accepted and misbehaves when asked.

    from mqlite.testing import broker

    with broker() as b:
        app = MyApp(*b.address)
        app.start()
        [message] = b.wait_for("app/status")
        with b.withhold("app", packet="PUBACK"):
            ...
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from mqlite.broker import Broker, Hook, MemoryStore, Message, SQLiteStore
from mqlite.broker.engine.clock import Clock, ManualClock
from mqlite.broker.engine.connection import CONNECTED, Connection
from mqlite.protocol import EMPTY_PROPERTIES, Properties

from .failing_store import FailingStore
from .faults import PACKET_TYPES, Faults, FaultySocket
from .records import Published, Recorder, describe

T = TypeVar("T")
DROPS = ("close", "reset", "silent")


@dataclass(frozen=True, slots=True)
class ClientView:
    """A connected client, as :meth:`TestBroker.clients` shows it."""

    client_id: str
    protocol_version: int  # 3, 4 or 5
    username: str | None
    keepalive: int
    peer: str


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session the broker holds, as :meth:`TestBroker.sessions` shows it."""

    client_id: str
    connected: bool
    persistent: bool
    expiry_interval: int
    subscriptions: dict[str, int]  # topic filter: its QoS
    queued: int  # messages waiting for the client
    inflight: int  # sent, not yet acknowledged


class Fault:
    """A fault in effect from the call that made it until :meth:`undo`, which leaving its
    ``with`` block calls."""

    def __init__(self, undo: Callable[[], None]) -> None:
        self._undo: Callable[[], None] | None = undo

    def undo(self) -> None:
        undo, self._undo = self._undo, None
        if undo is not None:
            undo()

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.undo()


class Withheld(Fault):
    """Packets of one type kept back from one client; sent when the block ends, if its
    connection is still open."""

    def __init__(self, undo: Callable[[], None], count: Callable[[], int]) -> None:
        super().__init__(undo)
        self._count = count

    @property
    def packets(self) -> int:
        """How many have been kept back so far."""
        return self._count()


class TestBroker:
    """A broker for tests; see :func:`broker`. Unpacks to ``(host, port)``."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, db: str | None = None, clock: str = "real", port: int = 0,
                 host: str = "127.0.0.1", hooks: Iterable[Hook] = (), sync: str = "normal",
                 **settings: Any) -> None:
        if clock not in ("real", "manual"):
            raise ValueError(f"clock must be 'real' or 'manual', not {clock!r}")
        # The manual clock stands still but for advance(); the machine's time still runs
        # what it times (sockets, flow control), so nothing hangs on it.
        self._manual: ManualClock | None = ManualClock() if clock == "manual" else None
        self.clock: Clock = self._manual or Clock()
        self._db = db
        self._sync = sync
        self._host = host
        self._port = port
        self._hooks = list(hooks)
        self._settings = settings
        self._faults = Faults()
        self._recorder = Recorder(self.clock.time)
        # Without a database the store is this process's memory: it outlives restart().
        self._memory = MemoryStore() if db is None or db == ":memory:" else None
        self._store: FailingStore | None = None
        self._broker: Broker | None = None
        self._address: tuple[str, int] | None = None

    # -- starting and stopping ---------------------------------------------------------------

    def start(self) -> TestBroker:
        if self._broker is not None:
            raise RuntimeError("the test broker is running already")
        if self._memory is not None:
            inner: MemoryStore | SQLiteStore = self._memory
        else:
            assert self._db is not None
            inner = SQLiteStore(self._db, self._sync)
        self._store = FailingStore(inner)
        port = self._address[1] if self._address is not None else self._port
        self._broker = Broker(self._host, port, store=self._store,
                              hooks=[*self._hooks, self._recorder], clock=self.clock,
                              accepted_socket=self._faulty, **self._settings)
        try:
            self._address = self._broker.start()
        except BaseException:
            self._broker = None
            inner.close()
            raise
        return self

    def _faulty(self, sock: socket.socket) -> socket.socket:
        return FaultySocket(sock, self._faults)

    def stop(self) -> None:
        """Stop gracefully, as at the end of a ``with`` block."""
        running, self._broker = self._broker, None
        if running is not None:
            running.stop()

    def kill(self) -> None:
        """Stop as ``kill -9`` would: no DISCONNECT, nothing committed after the current loop
        turn, the store as that commit left it. :meth:`restart` starts it again."""
        running, self._broker = self._broker, None
        if running is None:
            raise RuntimeError("the test broker is not running")
        running.kill()
        self._recorder.connected.clear()  # gone with the process

    def restart(self) -> None:
        """Crash and start again on the same port with the same store: persistent sessions,
        their subscriptions and queues, and retained messages survive, as after a crash;
        clients are disconnected without a DISCONNECT."""
        if self._broker is not None:
            self.kill()
        self.start()

    def __enter__(self) -> TestBroker:
        return self.start() if self._broker is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- where it is -----------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to connect to; the same across restarts."""
        if self._address is None:
            raise RuntimeError("the test broker has not started")
        return self._address

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.address)

    def __getitem__(self, index: int) -> Any:
        return self.address[index]

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        where = f"{self._address[0]}:{self._address[1]}" if self._address else "not started"
        state = "running" if self._broker is not None else "stopped"
        return f"<TestBroker {where} {state}>"

    @property
    def broker(self) -> Broker:
        """The :class:`~mqlite.broker.Broker` running now."""
        if self._broker is None:
            raise RuntimeError("the test broker is not running")
        return self._broker

    # -- what it saw -----------------------------------------------------------------------

    @property
    def messages(self) -> list[Published]:
        """Every PUBLISH the broker accepted, oldest first (across restarts)."""
        return self._recorder.snapshot()

    def wait_for(self, topic_filter: str = "#", count: int = 1,
                 timeout: float = 5.0) -> list[Published]:
        """The first ``count`` accepted messages whose topics match ``topic_filter``, waiting
        up to ``timeout`` seconds for them (TimeoutError listing what did arrive)."""
        return self._recorder.wait_for(topic_filter, count, timeout)

    def assert_published(self, topic_filter: str, payload: bytes | str | None = None,
                         count: int | None = None) -> list[Published]:
        """The accepted messages matching ``topic_filter`` (and ``payload``); AssertionError
        showing what the broker did accept if there are none (or not ``count``)."""
        wanted = payload.encode() if isinstance(payload, str) else payload
        found = [m for m in self._recorder.matching(topic_filter)
                 if wanted is None or m.payload == wanted]
        if (count is None and not found) or (count is not None and len(found) != count):
            what = f"{topic_filter!r}" + (f" with payload {wanted!r}" if wanted is not None
                                           else "")
            raise AssertionError(
                f"expected {count if count is not None else 'a'} message(s) on {what}, found "
                f"{len(found)}; the broker accepted:\n{describe(self.messages)}")
        return found

    def assert_not_published(self, topic_filter: str) -> None:
        found = self._recorder.matching(topic_filter)
        if found:
            raise AssertionError(f"expected no message on {topic_filter!r}, found:\n"
                                 f"{describe(found)}")

    def clear(self) -> None:
        """Forget the messages recorded so far."""
        self._recorder.clear()

    def wait_for_client(self, client_id: str, connected: bool = True,
                        timeout: float = 5.0) -> None:
        """Return once the broker has ``client_id`` connected (or, ``connected=False``, no
        longer connected: its DISCONNECT or its connection's end handled, its will and session
        expiry under way); TimeoutError otherwise."""
        self._recorder.wait_for_client(client_id, connected, timeout)

    def clients(self) -> list[ClientView]:
        """The clients connected now."""
        def read() -> list[ClientView]:
            return [ClientView(conn.client_id, conn.version, conn.who().username,
                               conn.keepalive, conn.peer)
                    for conn in self.broker.loop.connections
                    if conn.state == CONNECTED and conn.client_id is not None]
        return self._call(read)

    def sessions(self) -> list[SessionView]:
        """Every session the broker holds, connected or not."""
        def read() -> list[SessionView]:
            return [SessionView(s.client_id, s.connection is not None, s.persistent,
                                s.expiry_interval,
                                {f: o.qos for f, o in s.subscriptions.items()},
                                s.queued, len(s.inflight))
                    for s in self.broker.core.sessions.by_id.values()]
        return self._call(read)

    def retained(self, topic_filter: str = "#") -> list[Published]:
        """The retained messages whose topics match ``topic_filter``."""
        def read() -> list[Published]:
            core = self.broker.core
            now = self.clock.monotonic()
            wall = self.clock.time()  # when each was received, on the wall clock
            return [Published(m.topic, m.payload, m.qos, True, m.properties, m.origin,
                              wall - (now - m.received_at))
                    for m in core.retained.matching(topic_filter, now)]
        return self._call(read)

    # -- acting as the broker --------------------------------------------------------------

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                retain: bool = False, properties: Properties | None = None) -> None:
        """Publish from the broker itself, to every matching subscriber; returns once it is
        routed (and written to the subscribers' sockets)."""
        data = payload.encode() if isinstance(payload, str) else payload
        def route() -> None:
            message = Message(topic=topic, payload=data, qos=qos, retain=retain,
                              properties=properties or EMPTY_PROPERTIES,
                              received_at=self.clock.monotonic())
            self._recorder.add(message, None)
            self.broker.core.publish(message, self.clock.monotonic())
        self._call(route)
        self._settle()

    # -- faults ----------------------------------------------------------------------------

    def drop(self, client_id: str, how: str = "close") -> None:
        """End a client's connection as a network would: ``close`` (a TCP FIN), ``reset``
        (an RST), or ``silent`` (half-open: the connection stays, nothing passes either way,
        until the broker's keep alive gives up on it or the client closes). No DISCONNECT:
        the client's will is published."""
        if how not in DROPS:
            raise ValueError(f"how must be one of {', '.join(DROPS)}, not {how!r}")

        def cut() -> None:
            conn = self._connection_of(client_id)
            if how == "silent":
                assert isinstance(conn.sock, FaultySocket)
                conn.sock.silent = True
            else:
                self.broker.loop.cut(conn, f"dropped by the test ({how})", reset=how == "reset")
        self._call(cut)
        self._settle()

    def withhold(self, client_id: str, packet: str = "PUBACK") -> Withheld:
        """Keep back every ``packet`` (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, PINGRESP,
        PUBLISH, ...) the broker sends ``client_id``, on this and later connections, until the
        returned :class:`Withheld` ends (leaving its ``with`` block): then what was kept is
        sent if the connection it was meant for is still open (a delay), and otherwise never
        (lost with that connection)."""
        kind = PACKET_TYPES.get(packet.upper())
        if kind is None:
            raise ValueError(f"packet must be one of {', '.join(PACKET_TYPES)}, not {packet!r}")
        faults = self._faults
        with faults.lock:
            faults.withheld.setdefault(client_id, set()).add(kind)
        held: list[FaultySocket] = []

        def name_socket() -> None:  # a client id the broker assigned is not in the CONNECT
            with contextlib.suppress(LookupError):
                sock = self._connection_of(client_id).sock
                if isinstance(sock, FaultySocket):
                    sock.client_id = client_id
        self._call(name_socket)

        def count() -> int:
            with faults.lock:
                sockets = [s for s in faults.sockets if s.client_id == client_id]
            return sum(len(s.held) for s in [*sockets, *held])

        def release() -> None:
            with faults.lock:
                kinds = faults.withheld.get(client_id, set())
                kinds.discard(kind)
                if not kinds:
                    faults.withheld.pop(client_id, None)
            if self._broker is None:
                return

            def send_late() -> None:
                for conn in self.broker.loop.connections:
                    sock = conn.sock
                    if isinstance(sock, FaultySocket) and sock.client_id == client_id \
                            and sock.held and conn.open:
                        conn.send_bytes(sock.release())
            self._call(send_late)
            self._settle()
        return Withheld(release, count)

    def refuse_connects(self, reason_code: int, count: int = 1) -> Fault:
        """Answer the next ``count`` CONNECTs with a CONNACK refusing them with
        ``reason_code`` (an MQTT 5 reason code, e.g. 0x87 not authorized, 0x88 server
        unavailable, 0x8A banned; a 3.1.x client gets the matching return code 1-5), then
        close. Leaving the returned fault's ``with`` block cancels the refusals not used."""
        if not 0 < reason_code < 256:
            raise ValueError(f"a refusal's reason code is 1-255, not {reason_code}")
        faults = self._faults
        with faults.lock:
            faults.refusals.extend([reason_code] * count)

        def cancel() -> None:
            with faults.lock:
                faults.refusals.clear()
        return Fault(cancel)

    def store_fails(self, count: int | None = None) -> Fault:
        """Make the next ``count`` commits of the broker's store fail as on a full disk (None:
        every one until the returned fault ends). The broker acknowledges nothing of a turn it
        could not store, and closes the connections that sent it: their clients resend."""
        store = self._store
        if store is None:
            raise RuntimeError("the test broker is not running")
        store.fail(count)

        def recover() -> None:
            if self._store is not None:
                self._store.recover()
        return Fault(recover)

    # -- time ------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the broker's clock ``seconds`` ahead and let it act on what fell due (session
        and message expiry, will delays, keep alive); ``clock="manual"`` only.

        Connected clients are taken to have kept their connections alive meanwhile, as a
        client whose network loop runs does (they could not: no real time passed), except
        those :meth:`drop` silenced: a keep-alive test silences a client, then advances."""
        manual = self._manual
        if manual is None:
            raise RuntimeError("advance() needs a broker started with clock='manual'")
        if seconds < 0:
            raise ValueError("the clock only moves ahead")

        def jump() -> None:  # on the broker's thread: no turn sees the one without the other
            for conn in self.broker.loop.connections:
                sock = conn.sock
                if conn.deadline and not (isinstance(sock, FaultySocket) and sock.silent):
                    conn.deadline += seconds
            manual.advance(seconds)
        self._call(jump)
        self._settle()

    # -- on the broker's thread --------------------------------------------------------------

    def _call(self, action: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``action`` on the broker's thread; its result or its exception."""
        done = threading.Event()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, action()))
            except BaseException as exc:  # handed to the caller
                outcome.append((False, exc))
            done.set()
        self.broker.call_soon(run)
        if not done.wait(timeout):
            raise TimeoutError("the test broker's thread did not answer")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _settle(self) -> None:
        """Return once a whole loop turn has run since the call: what the last action set off
        (timers, routing) is committed and written."""
        self._call(lambda: None)
        self._call(lambda: None)

    def _connection_of(self, client_id: str) -> Connection:
        session = self.broker.core.sessions.by_id.get(client_id)
        conn = session.connection if session is not None else None
        if conn is None or not conn.open:
            connected = sorted(c.client_id for c in self.broker.loop.connections
                               if c.client_id is not None and c.open)
            raise LookupError(f"no client {client_id!r} is connected (connected: "
                              f"{', '.join(map(repr, connected)) or 'none'})")
        return conn


def broker(db: str | None = None, clock: str = "real", port: int = 0,
           **settings: Any) -> TestBroker:
    """A test broker, started by its ``with`` block (or :meth:`TestBroker.start`).

    ``db``: a SQLite file (kept; the test's to remove), or None for a store in memory that
    still outlives :meth:`~TestBroker.restart`. ``clock``: ``"real"``, or ``"manual"`` for a
    clock that :meth:`~TestBroker.advance` moves ahead. ``port``: 0 picks a free one.
    Other keywords are :class:`~mqlite.broker.BrokerConfig` settings (``max_inflight=5``,
    ``hooks=[...]``, ``sync="full"``)."""
    return TestBroker(db=db, clock=clock, port=port, **settings)
