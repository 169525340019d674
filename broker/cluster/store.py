"""Cluster mode's session store: persistent sessions in Redis, so that any node can resume
one and a surviving node can adopt a dead node's.

Each session is four keys under one hash tag (so the layout works on Redis Cluster):
``mq:s:{cid}`` (its record and its owner, ``node|epoch``), ``...:subs`` (filter -> options),
``...:d`` (seq -> delivery, queued or in flight) and ``...:q2`` (inbound QoS 2 ids awaiting
PUBREL). ``mq:nsess:{node}`` lists the sessions each node owns. A turn's changes go as one
script call per session in one pipelined round trip, answered before the turn's packets leave;
each call is **fenced**: it writes nothing unless the session's owner is this node with its
current epoch, so a node that was paused or cut off cannot overwrite a session another node
has taken since. A disconnected session's keys carry its expiry as a Redis TTL, cleared when a
client resumes it.

The owning node keeps its sessions in memory as a single broker does; Redis holds the copy
that moves. Retained messages are the cluster's (cluster.py), not this store's.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Sequence
from typing import Any

import hiredis
import msgpack  # type: ignore[import-untyped]  # ships no type information

from ..config.broker_config import NEVER_EXPIRES
from ..engine.journal import (
    Change,
    DeliveryDeleted,
    DeliverySaved,
    InboundQos2Added,
    InboundQos2Released,
    SessionDeleted,
    SessionSaved,
    StoredDelivery,
    StoredSession,
    SubscriptionDeleted,
    SubscriptionSaved,
)
from ..engine.serialize import pack_properties, pack_will, unpack_properties, unpack_will
from ..engine.session import QUEUED, SubscriptionOptions
from ..engine.store import SessionsFenced, StoredState, StoreWriteError
from ..message import Message
from .acks import StreamAcks
from .config import RedisAddress
from .scripts import Script
from .sync import RedisSync, RedisUnavailable

__all__ = ["RedisStore", "SessionsFenced"]


def session_keys(client_id: str) -> tuple[str, str, str, str]:
    base = f"mq:s:{{{client_id}}}"
    return base, base + ":subs", base + ":d", base + ":q2"


def node_sessions_key(node: str) -> str:
    return f"mq:nsess:{{{node}}}"


# KEYS: the session's four keys. ARGV: the writer "node|epoch", then ops: S rec ttl_ms (the
# record; its TTL, or -1 for none), X (the session ends), + filter options, - filter,
# D seq delivery, d seq, Q id, q id. -> {1} or, fenced, {0, the owner}.
WRITE = Script("""
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return {0, owner} end
local i = 2
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'S' then
    redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'rec', ARGV[i + 1])
    if tonumber(ARGV[i + 2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[i + 2])
    else redis.call('PERSIST', KEYS[1]) end
    i = i + 3
  elseif op == 'X' then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
    i = i + 1
  else
    if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], 'owner', ARGV[1]) end
    if op == '+' then redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2]); i = i + 3
    elseif op == '-' then redis.call('HDEL', KEYS[2], ARGV[i + 1]); i = i + 2
    elseif op == 'D' then redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2]); i = i + 3
    elseif op == 'd' then redis.call('HDEL', KEYS[3], ARGV[i + 1]); i = i + 2
    elseif op == 'Q' then redis.call('SADD', KEYS[4], ARGV[i + 1]); i = i + 2
    else redis.call('SREM', KEYS[4], ARGV[i + 1]); i = i + 2 end
  end
end
local ttl = redis.call('PTTL', KEYS[1])
for k = 2, 4 do
  if ttl > 0 then redis.call('PEXPIRE', KEYS[k], ttl) else redis.call('PERSIST', KEYS[k]) end
end
return {1}
""")

# KEYS: the session's four keys. ARGV: the new owner "node|epoch"; the node the current owner
# must be ("" for any); "1" to clear the expiry (a client resumes it). -> nil if there is no
# such session; {0, owner, its filters} if another node owns it; else {1, the previous owner,
# record, subscriptions, deliveries, inbound QoS 2 ids}.
TAKE = Script("""
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return false end
if ARGV[2] ~= '' and string.match(owner, '^([^|]*)') ~= ARGV[2] then
  return {0, owner, redis.call('HKEYS', KEYS[2])}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
if ARGV[3] == '1' then
  for k = 1, 4 do redis.call('PERSIST', KEYS[k]) end
end
return {1, owner, redis.call('HGET', KEYS[1], 'rec') or '',
        redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
        redis.call('SMEMBERS', KEYS[4])}
""")

SCRIPTS = (WRITE, TAKE)


class RedisStore:
    """A :class:`~mqlite.broker.engine.store.SessionStore` in Redis, fenced by ``node|epoch``.

    ``epoch`` is the node's (from the cluster's ``INCR``): until it is known the store loads
    nothing (a cluster node recovers its sessions with :meth:`recover` once it has joined).
    ``wait_replicas``: after a turn with a promised change, ``WAIT`` for that many replicas
    (``wait_timeout`` seconds), and fail the turn if fewer confirm."""

    # The owning node keeps its sessions' queues in memory; Redis holds the movable copy.
    queues_on_disk = False
    keeps_retained = False

    def __init__(self, address: RedisAddress, node: str | None, *, epoch: int | None = None,
                 timeout: float = 5.0, wait_replicas: int = 0, wait_timeout: float = 1.0,
                 acks: StreamAcks | None = None) -> None:
        """``node``: its id, if known already (else :meth:`recover` gives it). ``acks``: the
        node's stream entries delivered this turn, acknowledged in the same transaction as
        the session writes they caused (so that a node killed between the two neither loses
        them nor has them delivered again)."""
        self.node = node or ""
        self.epoch = epoch
        self.wait_replicas = wait_replicas
        self.wait_timeout = wait_timeout
        self._redis = RedisSync(address, timeout,
                                [("SCRIPT", "LOAD", script.source) for script in SCRIPTS])
        self._body_ids = itertools.count(secrets.randbits(40) << 20)
        self._acks = acks

    @property
    def _sessions_key(self) -> str:
        return node_sessions_key(self.node)

    @property
    def owner(self) -> str:
        return f"{self.node}|{self.epoch}"

    # -- SessionStore ----------------------------------------------------------------------

    def load(self) -> StoredState:
        """This node's sessions, once its epoch is known (nothing before)."""
        if self.epoch is None:
            return StoredState()
        return self.recover(self.epoch)

    def queued(self, client_id: str, from_seq: int, limit: int) -> list[StoredDelivery]:
        reply = self._call(("HGETALL", session_keys(client_id)[2]))[0]
        deliveries = _deliveries(reply, {}, time.monotonic())
        found = sorted(s for s, d in deliveries.items() if s >= from_seq and d.state == QUEUED)
        return [deliveries[seq] for seq in found[:limit]]

    def apply(self, changes: Sequence[Change]) -> None:
        by_session: dict[str, list[Any]] = {}
        promised = False
        ended: set[str] = set()  # sessions whose last change this turn deleted them
        now, wall = time.monotonic(), time.time()
        for change in changes:
            match change:
                case DeliverySaved():
                    ops = by_session.setdefault(change.client_id, [])
                    ops += ("D", change.seq, self._pack_delivery(change, now, wall))
                case DeliveryDeleted(client_id, seq):
                    by_session.setdefault(client_id, []).extend(("d", seq))
                case SessionSaved(session):
                    ops = by_session.setdefault(session.client_id, [])
                    ops += ("S", _pack_session(session), _ttl_ms(session, wall))
                    ended.discard(session.client_id)
                case SessionDeleted(client_id):
                    by_session.setdefault(client_id, []).append("X")
                    ended.add(client_id)
                case SubscriptionSaved(client_id, topic_filter, options):
                    by_session.setdefault(client_id, []).extend(
                        ("+", topic_filter, _pack_options(options)))
                case SubscriptionDeleted(client_id, topic_filter):
                    by_session.setdefault(client_id, []).extend(("-", topic_filter))
                case InboundQos2Added(client_id, packet_id):
                    by_session.setdefault(client_id, []).extend(("Q", packet_id))
                case InboundQos2Released(client_id, packet_id):
                    by_session.setdefault(client_id, []).extend(("q", packet_id))
                case _:
                    continue  # retained messages: the cluster keeps them
            promised = promised or change.promise
        if not by_session:
            return
        owner = self.owner
        commands: list[tuple[Any, ...]] = [
            ("EVALSHA", WRITE.sha, 4, *session_keys(client_id), owner, *ops)
            for client_id, ops in by_session.items()]
        # This node's sessions: those it wrote, but for those that ended.
        kept = [client_id for client_id in by_session if client_id not in ended]
        left = [client_id for client_id in by_session if client_id in ended]
        if kept:
            commands.append(("SADD", self._sessions_key, *kept))
        if left:
            commands.append(("SREM", self._sessions_key, *left))
        acks = self._acks.take() if self._acks is not None else None
        if acks is not None:
            stream, ids = acks
            commands = [("MULTI",), *commands, ("XACK", stream, "b", *ids),
                        ("XDEL", stream, *ids), ("EXEC",)]
        waits = bool(promised and self.wait_replicas)
        if waits:
            commands.append(("WAIT", self.wait_replicas, int(self.wait_timeout * 1000)))
        replies = self._call(*commands)
        if acks is not None:  # the transaction's replies are EXEC's
            executed = replies[-2 if waits else -1]
            if not isinstance(executed, list):
                raise StoreWriteError(f"Redis refused the session writes: {executed}")
            replies = [*executed, *replies[len(replies) - 1:]] if waits else executed
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise StoreWriteError(f"Redis refused the session writes: {reply}")
        fenced = [client_id for client_id, reply in zip(by_session, replies, strict=False)
                  if int(reply[0]) == 0]
        if fenced:
            raise SessionsFenced(fenced)
        if waits and int(replies[-1]) < self.wait_replicas:
            raise StoreWriteError(f"only {int(replies[-1])} of {self.wait_replicas} Redis "
                                  f"replica(s) confirmed the writes within "
                                  f"{self.wait_timeout:g} s")

    def flush(self) -> None:
        """Nothing waits: every apply() was answered."""

    def flush_deadline(self) -> None:
        return None

    def close(self) -> None:
        self._redis.close()

    def abandon(self) -> None:
        """Each apply() is written before it returns: nothing waits to be lost."""
        self._redis.close()

    @property
    def connection(self) -> RedisSync:
        """The store's connection (for redis_inspect's read-only views)."""
        return self._redis

    # -- sessions that move ----------------------------------------------------------------

    def take(self, client_id: str) -> StoredState | None:
        """Make this node the owner of ``client_id``'s stored session (a client resumes it
        here) and return it; None if there is none. StoreWriteError if Redis is away."""
        state, gone = self._take([client_id], require="", resume=True)
        return None if gone else state

    def filters_of(self, client_id: str) -> list[str]:
        """What a stored session subscribes to (read only: its owner is another node)."""
        return [raw.decode() for raw in
                self._call(("HKEYS", session_keys(client_id)[1]))[0]]

    def recover(self, epoch: int,
                elsewhere: dict[str, tuple[str, list[str]]] | None = None,
                node: str | None = None) -> StoredState:
        """At (re)start: the sessions this node id owned, taken with the new ``epoch``;
        ``elsewhere`` gets those that another node took meanwhile: their owner node and
        filters. ``node``: this node's id (when the store was made before it was known)."""
        if node is not None:
            self.node = node
        self.epoch = epoch
        members = [raw.decode() for raw in self._call(("SMEMBERS", self._sessions_key))[0]]
        state, gone = self._take(members, require=self.node, resume=False,
                                 elsewhere=elsewhere)
        if gone:
            self._call(("SREM", self._sessions_key, *gone))
        return state

    def adopt(self, dead: str) -> tuple[StoredState, dict[str, tuple[str, list[str]]]]:
        """The sessions of ``dead`` (a node whose membership expired), now this node's; and
        those of its sessions that other nodes took meanwhile: their owner node and
        filters."""
        dead_key = node_sessions_key(dead)
        members = [raw.decode() for raw in self._call(("SMEMBERS", dead_key))[0]]
        elsewhere: dict[str, tuple[str, list[str]]] = {}
        state, _ = self._take(members, require=dead, resume=False, elsewhere=elsewhere)
        if state.sessions:
            self._call(("SADD", self._sessions_key, *state.sessions))
        self._call(("DEL", dead_key))
        return state, elsewhere

    def _take(self, client_ids: list[str], *, require: str, resume: bool,
              elsewhere: dict[str, tuple[str, list[str]]] | None = None,
              ) -> tuple[StoredState, list[str]]:
        """The sessions taken, and the ids not taken (none, or another node's)."""
        state = StoredState()
        if not client_ids:
            return state, []
        replies = self._call(*[("EVALSHA", TAKE.sha, 4, *session_keys(client_id), self.owner,
                                require, "1" if resume else "0")
                               for client_id in client_ids])
        now = time.monotonic()
        bodies: dict[int, Message] = {}
        gone = []
        for client_id, reply in zip(client_ids, replies, strict=True):
            if isinstance(reply, hiredis.ReplyError):
                raise StoreWriteError(f"Redis refused to hand over session {client_id}: "
                                      f"{reply}")
            if reply is None or int(reply[0]) == 0:
                gone.append(client_id)
                if reply is not None and elsewhere is not None:
                    elsewhere[client_id] = (reply[1].decode().split("|", 1)[0],
                                            [raw.decode() for raw in reply[2]])
                continue
            _, _, record, subscriptions, deliveries, inbound = reply
            if record:
                state.sessions[client_id] = unpack_session(client_id, record)
            if subscriptions:
                state.subscriptions[client_id] = {
                    subscriptions[i].decode(): _unpack_options(subscriptions[i + 1])
                    for i in range(0, len(subscriptions), 2)}
            if deliveries:
                state.deliveries[client_id] = _deliveries(deliveries, bodies, now)
            if inbound:
                state.inbound_qos2[client_id] = {int(raw) for raw in inbound}
        return state, gone

    def _call(self, *commands: tuple[Any, ...]) -> list[Any]:
        try:
            return self._redis.call(*commands)
        except RedisUnavailable as exc:
            raise StoreWriteError(str(exc)) from None

    def _pack_delivery(self, change: DeliverySaved, now: float, wall: float) -> bytes:
        message = change.message
        if message.store_id is None:
            message.store_id = next(self._body_ids)  # one body in memory when read back
        expires = None if message.expires_at is None else wall + (message.expires_at - now)
        return bytes(msgpack.packb(
            [change.qos, change.retain, change.packet_id, int(change.state),
             list(change.subscription_ids), message.store_id, message.topic, message.payload,
             message.qos, message.retain, pack_properties(message.properties),
             message.origin, expires,
             wall - (now - message.received_at) if message.received_at else wall,
             message.cluster_id],
            use_bin_type=True))


def _deliveries(flat: list[bytes], bodies: dict[int, Message], now: float,
                ) -> dict[int, StoredDelivery]:
    found = {}
    wall = time.time()
    for index in range(0, len(flat), 2):
        (qos, retain, packet_id, state, subscription_ids, body_id, topic, payload, mqos,
         mretain, properties, origin, expires, created, cluster_id) = msgpack.unpackb(
            flat[index + 1], raw=False)
        message = bodies.get(body_id)
        if message is None:
            message = bodies[body_id] = Message(
                topic=topic, payload=payload, qos=mqos, retain=mretain,
                properties=unpack_properties(properties), origin=origin,
                expires_at=None if expires is None else now + (expires - wall),
                store_id=body_id, received_at=now - max(0.0, wall - created),
                cluster_id=cluster_id)
        seq = int(flat[index])
        found[seq] = StoredDelivery(seq=seq, message=message, qos=qos, retain=retain,
                                    packet_id=packet_id, state=state,
                                    subscription_ids=tuple(subscription_ids))
    return found


def unpack_delivery(data: bytes) -> dict[str, Any]:
    """What an operator sees of a stored delivery (``mqlite sessions show``)."""
    (qos, _, packet_id, state, _, _, topic, payload, _, _, _, _, _, created, _) = \
        msgpack.unpackb(data, raw=False)
    return {"topic": topic, "qos": qos, "packet_id": packet_id, "state": state,
            "bytes": len(payload), "created_at": created}


def _pack_session(session: StoredSession) -> bytes:
    return bytes(msgpack.packb([session.protocol_version, session.expiry_interval,
                                pack_will(session.will), session.will_delay,
                                session.disconnected_at], use_bin_type=True))


def unpack_session(client_id: str, record: bytes) -> StoredSession:
    version, expiry, will, will_delay, disconnected_at = msgpack.unpackb(record, raw=False)
    return StoredSession(client_id=client_id, protocol_version=version,
                         expiry_interval=expiry, will=unpack_will(will),
                         will_delay=will_delay, disconnected_at=disconnected_at)


def _ttl_ms(session: StoredSession, wall: float) -> int:
    """The record's TTL: the session's expiry counted from its disconnection; -1 while it is
    connected or never expires."""
    if session.disconnected_at is None or session.expiry_interval == NEVER_EXPIRES:
        return -1
    left = session.expiry_interval - (wall - session.disconnected_at)
    # A little longer than the owner's own expiry timer, which ends the session itself.
    return max(1, int(left * 1000) + 5000)


def _pack_options(options: SubscriptionOptions) -> bytes:
    return bytes(msgpack.packb([options.qos, options.no_local, options.retain_as_published,
                                options.retain_handling, options.identifier]))


def _unpack_options(data: bytes) -> SubscriptionOptions:
    qos, no_local, as_published, handling, identifier = msgpack.unpackb(data)
    return SubscriptionOptions(qos=qos, no_local=no_local, retain_as_published=as_published,
                               retain_handling=handling, identifier=identifier)
