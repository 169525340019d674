"""Read-only inspection of the sessions cluster mode keeps in Redis (``mqlite sessions
--cluster``, ``GET /api/v1/cluster/sessions``): it never writes, so it never takes a session
from the node that owns it."""

from __future__ import annotations

from typing import Any

import hiredis
import msgpack  # type: ignore[import-untyped]  # ships no type information

from ..engine.session_summary import ClusterSessionSummary
from ..engine.store import StoreError
from .config import RedisAddress
from .scripts import node_key
from .store import session_keys, unpack_delivery, unpack_session
from .sync import RedisSync, RedisUnavailable

_SCAN_COUNT = 500


class SessionReader:
    """Reads the stored sessions over a connection of its own (or the store's)."""

    def __init__(self, redis: RedisSync) -> None:
        self._redis = redis

    @classmethod
    def connect(cls, address: RedisAddress, timeout: float = 5.0) -> SessionReader:
        return cls(RedisSync(address, timeout, []))

    def close(self) -> None:
        self._redis.close()

    def page(self, cursor: int = 0, count: int = _SCAN_COUNT,
             ) -> tuple[list[ClusterSessionSummary], int]:
        """Some of the sessions (SCAN's page from ``cursor``), and the cursor of the next
        page (0: none)."""
        reply = self._call(("SCAN", cursor, "MATCH", "mq:s:{*", "COUNT", count))[0]
        following = int(reply[0])
        client_ids = sorted(key.decode()[len("mq:s:{"):-1] for key in reply[1]
                            if key.endswith(b"}"))  # a session's record, not its other keys
        return self._summaries(client_ids), following

    def all(self) -> list[ClusterSessionSummary]:
        found: list[ClusterSessionSummary] = []
        cursor = 0
        while True:
            page, cursor = self.page(cursor)
            found += page
            if not cursor:
                return sorted(found, key=lambda s: s.client_id)

    def one(self, client_id: str) -> tuple[ClusterSessionSummary, list[dict[str, Any]],
                                           list[dict[str, Any]]] | None:
        """A session's summary, subscriptions and queued messages; None if there is none."""
        summaries = self._summaries([client_id])
        if not summaries:
            return None
        _, subs, deliveries, _ = session_keys(client_id)
        flat_subs, flat_deliveries = self._call(("HGETALL", subs), ("HGETALL", deliveries))
        subscriptions = []
        for index in range(0, len(flat_subs), 2):
            qos, no_local, as_published, handling, identifier = msgpack.unpackb(
                flat_subs[index + 1])
            subscriptions.append({"topic_filter": flat_subs[index].decode(), "qos": qos,
                                  "no_local": no_local, "retain_as_published": as_published,
                                  "retain_handling": handling, "identifier": identifier})
        queue = []
        for index in range(0, len(flat_deliveries), 2):
            delivery = unpack_delivery(flat_deliveries[index + 1])
            queue.append({"seq": int(flat_deliveries[index]), **delivery})
        queue.sort(key=lambda q: q["seq"])
        summary = summaries[0]
        created = [q["created_at"] for q in queue if q["created_at"]]
        summary.oldest_queued_at = min(created) if created else None
        return (summary, sorted(subscriptions, key=lambda s: s["topic_filter"]), queue)

    def _summaries(self, client_ids: list[str]) -> list[ClusterSessionSummary]:
        if not client_ids:
            return []
        commands: list[tuple[Any, ...]] = []
        for client_id in client_ids:
            base, subs, deliveries, _ = session_keys(client_id)
            commands += [("HMGET", base, "owner", "rec"), ("HLEN", subs), ("HLEN", deliveries),
                         ("PTTL", base)]
        replies = self._call(*commands)
        owners = {raw.split(b"|", 1)[0].decode() for raw, _ in
                  (replies[i] for i in range(0, len(replies), 4)) if raw}
        alive = dict(zip(sorted(owners), self._call(*[("EXISTS", node_key(n))
                                                      for n in sorted(owners)]), strict=True))
        found = []
        for index, client_id in enumerate(client_ids):
            (owner, record), subscriptions, queued, ttl = replies[4 * index:4 * index + 4]
            if owner is None or not record:
                continue  # gone meanwhile, or not a whole session
            node = owner.split(b"|", 1)[0].decode()
            stored = unpack_session(client_id, record)
            found.append(ClusterSessionSummary(
                client_id=client_id, online=stored.disconnected_at is None and
                bool(alive.get(node)), protocol_version=stored.protocol_version,
                expiry_interval=stored.expiry_interval, subscriptions=int(subscriptions),
                queued=int(queued), oldest_queued_at=None, last_seen=stored.disconnected_at,
                node=node, expires_in=int(ttl) / 1000 if int(ttl) > 0 else None))
        return found

    def _call(self, *commands: tuple[Any, ...]) -> list[Any]:
        try:
            replies = self._redis.call(*commands)
        except RedisUnavailable as exc:
            raise StoreError(str(exc)) from None
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise StoreError(f"Redis: {reply}")
        return replies

