"""What packet handlers, routing and delivery may use of the broker: a handler's
:class:`Context`, and the typed :class:`BrokerServices` interface that
:class:`~mqlite.broker.engine.core.BrokerCore` provides. Handlers import this, never the core or the
registry's implementation, so those can import the handlers without a cycle."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from mqlite.protocol import Will

from ..config.broker_config import BrokerConfig
from ..hooks import ClientInfo, Hooks
from ..message import Message
from ..security.failure_delays import FailureDelays
from ..security.scram_auth import ScramAuthentication
from .clock import Clock
from .connection import Connection
from .denials import DenialLog
from .journal import Journal
from .retained import RetainedMessages
from .session import Session
from .stats import Stats
from .store import SessionStore, StoredState
from .subscriptions import SubscriptionIndex
from .timers import TimerHeap


class RouteResult(NamedTuple):
    """What routing one message did."""

    matched: int  # how many sessions (and shared groups) it went to
    # A live session whose queue this message took over its high mark: the publisher is to be
    # paused until it drains (flow control). None if no queue got that full.
    congested: Session | None


class SessionTotals(NamedTuple):
    """Sums over every session, for /metrics and $SYS (one pass, when asked)."""

    online: int
    offline: int
    subscriptions: int
    shared_subscriptions: int
    queued: int
    queued_bytes: int
    inflight: int
    deepest: int  # the deepest queue's length, and whose it is
    deepest_id: str | None


class Cluster(Protocol):
    """The broker's place among others: cluster mode's node
    (:class:`~mqlite.broker.cluster.node.ClusterNode`), or a broker alone
    (:class:`~mqlite.broker.engine.single_node.SingleNode`, the default). The hot paths test
    ``BrokerServices.clustered`` first, as they test ``hooks.active``."""

    @property
    def available(self) -> bool:
        """False while Redis is unreachable: CONNECTs are refused, remote QoS 1/2 too."""

    def claim(self, conn: Connection, client_id: str,
              proceed: Callable[[bool, float], None]) -> None:
        """Take ``client_id`` over cluster-wide; then ``proceed(claimed, now)``."""

    def hold(self, conn: Connection, session: Session | None, qos2_id: int | None) -> None:
        """``conn``'s answers of this turn wait for Redis to confirm the turn's writes."""

    def needs_remote(self, topic: str, retain: bool) -> bool: ...

    def session_ended(self, client_id: str) -> None: ...

    def publish(self, message: Message, now: float) -> RouteResult: ...

    @property
    def node_id(self) -> str: ...

    def flush(self) -> None:
        """After the turn's commit: the turn's writes to the other nodes."""

    def sessions_fenced(self, client_ids: list[str]) -> None:
        """The store refused writes to these sessions: another node owns them now."""


class Sessions(Protocol):
    """The sessions registry (:class:`~mqlite.broker.engine.sessions.SessionRegistry`): client id to
    session, and what changes sessions."""

    by_id: dict[str, Session]
    internal: set[str]  # client ids of in-process sessions (bridges' local sides)

    def __contains__(self, client_id: object) -> bool: ...

    def get(self, client_id: str) -> Session | None: ...

    def new_client_id(self) -> str: ...

    def open(self, conn: Connection, *, client_id: str, protocol_version: int, expiry: int,
             clean_start: bool, will: Will | None) -> tuple[Session, bool]: ...

    def set_expiry(self, session: Session, expiry: int) -> None: ...

    def detach(self, conn: Connection) -> None: ...

    def end(self, session: Session, *, promise: bool) -> None: ...

    def forget(self, session: Session, reason: str) -> None:
        """Cluster mode: the session is another node's now; it leaves this one as it is."""

    def restore(self, state: StoredState, retained: RetainedMessages, *,
                quiet: bool = False) -> None:
        """Sessions read from the store (at start, or moved here in cluster mode)."""

    def client_info_of(self, session: Session) -> ClientInfo: ...

    def totals(self) -> SessionTotals: ...


class BrokerServices(Protocol):
    config: BrokerConfig
    clock: Clock  # what every deadline reads the time from
    hooks: Hooks
    stats: Stats
    journal: Journal
    store: SessionStore
    # Sessions that queued this turn, for stored_queue.settle() after the commit.
    settling: set[Session]
    # Payload and topic bytes queued by persistent sessions, against max_store_bytes.
    queued_bytes_stored: int
    index: SubscriptionIndex
    retained: RetainedMessages
    auth_failures: FailureDelays
    scram: ScramAuthentication | None
    denials: DenialLog  # what access checks refused, logged (rate limited)

    @property
    def sessions(self) -> Sessions: ...

    @property
    def cluster(self) -> Cluster:
        """Cluster mode's node, or the single-node default."""

    @property
    def clustered(self) -> bool:
        """Whether the broker is a node of a cluster (the hot paths' one test)."""

    @property
    def paused(self) -> Mapping[Connection, Session | None]:
        """Connections not read for now: publishers paused until the session they flood
        drains (flow control), or (None) a CONNECT waiting for its authentication."""

    def publish(self, message: Message, now: float) -> RouteResult:
        """Retain as flagged, then route."""

    def pause(self, conn: Connection, session: Session, now: float) -> None: ...

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` at ``deadline`` on the broker's clock (a timer of the
        loop)."""

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` after ``seconds`` of the machine's time."""

    def resume_publishers(self, session: Session) -> None: ...

    def authenticate(self, conn: Connection, client: ClientInfo, password: bytes | None,
                     then: Callable[[bool, float], None]) -> bool | None:
        """The authentication hooks' answer; None when it comes later, to ``then``."""

    def drop(self, conn: Connection, reason: str, disconnect_code: int | None = None) -> None:
        """Close ``conn`` (after flushing), handling its will and session at once."""

    def wait_connect(self, conn: Connection) -> None:
        """A CONNECT waits for an answer from elsewhere: ``conn`` is not read meanwhile."""

    def resume_connect(self, conn: Connection, then: Callable[[float], None]) -> None:
        """The answer came: ``then(now)``, unless ``conn`` is gone (or timed out) by now."""

    def count_drop(self, client_id: str | None, why: str, message: Message | None,
                   reason: str) -> None:
        """Count (by ``reason``, one of stats.DROP_REASONS), tell the hooks, log now and
        then."""


class Context:
    """What a packet handler gets: the connection, its session (the connection is attached,
    so never None), the time the packets were read, and the broker's services. One per
    connection from CONNACK on; ``now`` is set before each packet."""

    __slots__ = ("broker", "conn", "now", "session")

    def __init__(self, conn: Connection, session: Session, broker: BrokerServices) -> None:
        self.conn = conn
        self.session = session
        self.broker = broker
        self.now = 0.0


class ClusterHost(BrokerServices, Protocol):
    """What cluster mode's node uses of the broker (the core provides it)."""

    timers: TimerHeap
    dirty: set[Connection]  # connections with output to flush this turn
    started: float
