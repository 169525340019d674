"""What packet handlers and outbound delivery may use of the broker: a typed interface that
:class:`~mqlite.broker.core.BrokerCore` provides. Handlers import this, never the core, so
the core can import them without a cycle."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from .config import BrokerConfig
from .connection import Connection
from .hooks import ClientInfo, Hooks
from .message import Message
from .retained import RetainedMessages
from .session import Session
from .stats import Stats
from .store import SessionStore
from .subscriptions import SubscriptionIndex


class RouteResult(NamedTuple):
    """What routing one message did."""

    matched: int  # how many sessions (and shared groups) it went to
    # A live session whose queue this message took over its high mark: the publisher is to be
    # paused until it drains (flow control). None if no queue got that full.
    congested: Session | None


class BrokerServices(Protocol):
    config: BrokerConfig
    store: SessionStore
    hooks: Hooks
    stats: Stats
    # The sessions registry, the subscription index and the retained messages.
    sessions: dict[str, Session]
    index: SubscriptionIndex
    retained: RetainedMessages
    # Flow control: publishers paused until the session they flood drains.
    paused: dict[Connection, Session]

    def attach(self, conn: Connection, session: Session) -> None: ...

    def end_session(self, session: Session) -> None: ...

    def save_session(self, session: Session) -> None: ...

    def client_info_of(self, session: Session) -> ClientInfo: ...

    def publish(self, message: Message, now: float) -> RouteResult: ...

    def pause(self, conn: Connection, session: Session, now: float) -> None: ...

    def resume_publishers(self, session: Session) -> None: ...

    def drop(self, conn: Connection, reason: str, disconnect_code: int | None = None) -> None: ...

    def count_drop(self, session: Session | None, why: str,
                   message: Message | None = None) -> None: ...
