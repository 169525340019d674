"""The ``$SYS/broker/...`` tree, with mosquitto's names and meanings so that dashboards made
for mosquitto work: published retained every ``sys_interval`` seconds (in memory only: it is
rebuilt on every start), and mqlite's own numbers under ``$SYS/broker/mqlite/``.

The ``load/.../1min|5min|15min`` values are what mosquitto publishes: per-minute rates over
the last interval, smoothed by exponential moving averages over 1, 5 and 15 minutes.
"""

from __future__ import annotations

import math
from importlib.metadata import version as package_version
from typing import Protocol

from ..message import Message
from .process_stats import memory
from .reporting import Reporter
from .routing import route
from .services import BrokerServices
from .store import SessionStore


class SysSource(BrokerServices, Protocol):
    """What the tree reads (the core provides it)."""

    store: SessionStore
    started: float
    reporters: list[Reporter]

    def paused_publishers(self) -> int: ...

_WINDOWS = (("1min", 60.0), ("5min", 300.0), ("15min", 900.0))
# load/<name>: the counter whose rate it is.
_LOADS = ("messages/received", "messages/sent", "publish/dropped", "publish/received",
          "publish/sent", "bytes/received", "bytes/sent", "sockets", "connections")


class SysTree:
    def __init__(self, core: SysSource) -> None:
        self._core = core
        self._version = f"mqlite {package_version('mqlite')}"
        self._last: dict[str, int] | None = None
        self._last_at = 0.0
        self._loads: dict[str, float] = {}

    def counters(self) -> dict[str, int]:
        stats = self._core.stats
        return {
            "messages/received": stats.packets_received,
            "messages/sent": stats.control_packets_sent + stats.messages_sent,
            "publish/dropped": stats.messages_dropped,
            "publish/received": stats.messages_received,
            "publish/sent": stats.messages_sent,
            "bytes/received": stats.bytes_received,
            "bytes/sent": stats.bytes_sent,
            "sockets": stats.sockets_total,
            "connections": stats.clients_total,
        }

    def values(self, now: float) -> dict[str, str]:
        """Every topic under $SYS/broker/ and its payload, as of ``now``."""
        core = self._core
        stats = core.stats
        counters = self.counters()
        totals = core.sessions.totals()
        online, offline = totals.online, totals.offline
        stored = totals.queued + totals.inflight
        retained = core.retained
        values = {
            "version": self._version,
            "uptime": f"{int(now - core.started)} seconds",
            "clients/total": str(online + offline),
            "clients/connected": str(online),
            "clients/active": str(online),  # mosquitto's deprecated name for it
            "clients/disconnected": str(offline),
            "clients/inactive": str(offline),
            "clients/maximum": str(stats.clients_maximum),
            "clients/expired": str(stats.sessions_expired),
            "messages/received": str(counters["messages/received"]),
            "messages/sent": str(counters["messages/sent"]),
            "messages/stored": str(stored + len(retained)),
            "store/messages/count": str(stored + len(retained)),
            "store/messages/bytes": str(totals.queued_bytes + retained.payload_bytes()),
            "publish/messages/received": str(stats.messages_received),
            "publish/messages/sent": str(stats.messages_sent),
            "publish/messages/dropped": str(stats.messages_dropped),
            "publish/bytes/received": str(stats.publish_bytes_received),
            "publish/bytes/sent": str(stats.publish_bytes_sent),
            "bytes/received": str(stats.bytes_received),
            "bytes/sent": str(stats.bytes_sent),
            "subscriptions/count": str(totals.subscriptions),
            "shared_subscriptions/count": str(totals.shared_subscriptions),
            "retained messages/count": str(len(retained)),
            "mqlite/rss": str(memory()[1]),
            "mqlite/store/commits": str(getattr(core.store, "commits", 0)),
            "mqlite/store/syncs": str(getattr(core.store, "wal_syncs", 0)),
            "mqlite/paused publishers": str(core.paused_publishers()),
        }
        for reason, count in stats.dropped.items():
            values[f"mqlite/dropped/{reason}"] = str(count)
        for reporter in core.reporters:  # the plug-ins' (bridges, cluster)
            values.update(reporter.sys_values())
        self._update_loads(counters, now)
        for name, value in self._loads.items():
            values[f"load/{name}"] = f"{value:.2f}"
        return values

    def _update_loads(self, counters: dict[str, int], now: float) -> None:
        last = self._last
        elapsed = now - self._last_at
        self._last, self._last_at = counters, now
        if last is None or elapsed <= 0:
            return
        per_minute = 60.0 / elapsed
        for name in _LOADS:
            rate = (counters[name] - last[name]) * per_minute
            for window, seconds in _WINDOWS:
                key = f"{name}/{window}"
                current = self._loads.get(key)
                if current is None:
                    self._loads[key] = rate
                else:
                    exponent = math.exp(-elapsed / seconds)
                    self._loads[key] = rate + exponent * (current - rate)

    def publish(self, now: float) -> None:
        """Cluster mode: the node's tree also under $SYS/broker/node/<id>/ (sent to the
        other nodes' subscribers), and the cluster's totals under $SYS/broker/cluster/."""
        core = self._core
        cluster = core.cluster
        values = self.values(now)
        for name, value in values.items():
            message = Message(topic=f"$SYS/broker/{name}", payload=value.encode(), qos=0,
                              retain=True)
            core.retained.set(message)  # in memory only: $SYS is rebuilt on every start
            route(core, message, now)
            if core.clustered and not name.startswith("cluster/"):
                mine = Message(topic=f"$SYS/broker/node/{cluster.node_id}/{name}",
                               payload=message.payload, qos=0, retain=True)
                core.retained.set(mine)
                cluster.publish(mine, now)

