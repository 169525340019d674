"""Routing: which sessions a message goes to. Overlapping subscriptions of one session are
merged; a shared subscription group gives each message to one member."""

from __future__ import annotations

from collections.abc import Container

from ..message import Message
from .delivery import deliver, overflows
from .publish_encoding import WireCache
from .services import BrokerServices, RouteResult
from .session import Session, SubscriptionOptions
from .subscriptions import Entry, SharedGroup, SharedKey


class _Target:
    """What one session gets of one message: overlapping subscriptions merged."""

    __slots__ = ("as_published", "identifiers", "qos")

    def __init__(self, qos: int, identifier: int | None, as_published: bool) -> None:
        self.qos = qos
        self.identifiers = [identifier] if identifier else []
        self.as_published = as_published


def _merge(targets: dict[str, _Target], client_id: str, entry: SubscriptionOptions) -> None:
    """One more matching subscription of a session: the highest QoS, every identifier."""
    target = targets.get(client_id)
    if target is None:
        targets[client_id] = _Target(entry.qos, entry.identifier, entry.retain_as_published)
    else:
        target.qos = max(target.qos, entry.qos)
        if entry.identifier:
            target.identifiers.append(entry.identifier)
        target.as_published = target.as_published or entry.retain_as_published


# The results with no congestion for the common match counts, made once: a NamedTuple built
# per message costs a Python call on the hot path (measured: 19.06 -> 20.01 calls per QoS 0
# message).
_UNCONGESTED = [RouteResult(count, None) for count in range(64)]
_NO_MATCH = _UNCONGESTED[0]


def _result(count: int, congested: Session | None) -> RouteResult:
    if congested is None and count < 64:
        return _UNCONGESTED[count]
    return RouteResult(count, congested)


def route(broker: BrokerServices, message: Message, now: float,
          shares: Container[str] | None = None) -> RouteResult:
    """Deliver ``message`` to every matching session. Overlapping subscriptions of one session
    give one copy at the highest QoS, with every matching subscription identifier (spec
    3.3.4). ``shares``: in cluster mode, the shared subscriptions ("$share/g/f") whose member
    is to be picked here (another node serves the others); None: all of them."""
    matches = broker.index.match(message.topic)
    if not matches:
        return _NO_MATCH
    if len(matches) == 1:
        return _route_one_filter(broker, matches[0], message, now, shares)
    origin = message.origin
    targets: dict[str, _Target] = {}
    shared: list[SharedGroup] = []
    for entries in matches:
        for key, entry in entries.items():
            if isinstance(entry, SharedGroup):
                if shares is None or entry.share in shares:
                    shared.append(entry)
                continue
            assert isinstance(key, str)
            if entry.no_local and key == origin:
                continue
            _merge(targets, key, entry)
    cache: WireCache = {}
    sessions = broker.sessions.by_id
    congested = None
    cap = 2 if broker.config.upgrade_outgoing_qos else message.qos
    for client_id, target in targets.items():
        session = sessions.get(client_id)
        if session is not None:
            congested = deliver(broker, session, message, qos=min(target.qos, cap),
                                retain=message.retain and target.as_published,
                                subscription_ids=tuple(target.identifiers), now=now,
                                cache=cache) or congested
    for group in shared:
        congested = _deliver_shared(broker, group, message, now) or congested
    return _result(len(targets) + len(shared), congested)


def _route_one_filter(broker: BrokerServices, entries: dict[str | SharedKey, Entry],
                      message: Message, now: float,
                      shares: Container[str] | None) -> RouteResult:
    """The common case, one matching filter: no session can match twice, so nothing to
    merge."""
    origin = message.origin
    sessions = broker.sessions.by_id
    cache: WireCache = {}
    qos = 2 if broker.config.upgrade_outgoing_qos else message.qos  # the QoS's upper bound
    retain = message.retain
    count = 0
    congested = None
    for key, entry in entries.items():
        if isinstance(entry, SharedGroup):
            if shares is None or entry.share in shares:
                congested = _deliver_shared(broker, entry, message, now) or congested
                count += 1
            continue
        if entry.no_local and key == origin:
            continue
        count += 1
        assert isinstance(key, str)
        session = sessions.get(key)
        if session is not None:
            identifier = entry.identifier
            # qos, retain, subscription_ids, now, cache
            congested = deliver(broker, session, message, min(entry.qos, qos),
                                retain and entry.retain_as_published,
                                (identifier,) if identifier else (), now,
                                cache) or congested
    if congested is None and count < 64:  # inlined _result: this is the hot path
        return _UNCONGESTED[count]
    return RouteResult(count, congested)


def route_only(broker: BrokerServices, message: Message, now: float,
               client_ids: Container[str]) -> list[str]:
    """Cluster mode: deliver ``message`` to the matching sessions among ``client_ids`` only
    (those a node moved or adopted, whose messages came to the node they left), as route()
    would (overlaps merged, a shared group's message to a member among them); the client ids
    it matched."""
    targets: dict[str, _Target] = {}
    for entries in broker.index.match(message.topic):
        for key, entry in entries.items():
            if isinstance(entry, SharedGroup):
                member = next((c for c in entry.members if c in client_ids), None)
                if member is not None and member not in targets:
                    options = entry.members[member]
                    targets[member] = _Target(options.qos, options.identifier, False)
                continue
            assert isinstance(key, str)
            if key not in client_ids or (entry.no_local and key == message.origin):
                continue
            _merge(targets, key, entry)
    cap = 2 if broker.config.upgrade_outgoing_qos else message.qos
    for client_id, target in targets.items():
        session = broker.sessions.by_id.get(client_id)
        if session is not None:
            deliver(broker, session, message, qos=min(target.qos, cap),
                    retain=message.retain and target.as_published,
                    subscription_ids=tuple(target.identifiers), now=now, cache=None)
    return list(targets)


def overflowing(broker: BrokerServices, message: Message) -> str | None:
    """The client id of a persistent session whose queue (or the store) is too full to take
    this QoS 1/2 message, if one would get it: the ``reject`` policy asks before routing, so
    that a refused message reaches no one."""
    matches = broker.index.match(message.topic)
    cap = 2 if broker.config.upgrade_outgoing_qos else message.qos
    size = message.size
    sessions = broker.sessions.by_id
    for entries in matches:
        for key, entry in entries.items():
            if isinstance(entry, SharedGroup):
                client_id, options = _member(broker, entry)
                qos = options.qos
            else:
                assert isinstance(key, str)
                if entry.no_local and key == message.origin:
                    continue
                client_id, qos = key, entry.qos
            session = sessions.get(client_id)
            if (min(qos, cap) and session is not None and session.expiry_interval > 0
                    and overflows(broker, session, size)):
                return client_id
    return None


def _member(broker: BrokerServices, group: SharedGroup) -> tuple[str, SubscriptionOptions]:
    """The member the group's next message goes to: round robin, preferring members that are
    connected."""
    members = list(group.members.items())
    sessions = broker.sessions.by_id
    online = [(c, o) for c, o in members if (s := sessions.get(c)) and s.connection]
    pool = online or members
    return pool[group.next_index % len(pool)]


def _deliver_shared(broker: BrokerServices, group: SharedGroup, message: Message,
                    now: float) -> Session | None:
    """One member per message."""
    client_id, options = _member(broker, group)
    group.next_index += 1
    session = broker.sessions.by_id.get(client_id)
    if session is None:
        return None
    ids = (options.identifier,) if options.identifier else ()
    cap = 2 if broker.config.upgrade_outgoing_qos else message.qos
    return deliver(broker, session, message, qos=min(options.qos, cap), retain=False,
                   subscription_ids=ids, now=now, cache=None)
