"""Cluster mode's face to operators (engine/reporting.py): /api/v1/cluster (this node, its
epoch, the live members, every other node's routes) and /api/v1/cluster/sessions (every
node's persistent sessions as Redis holds them, a page at a time), the mqlite_cluster_*
families, the cluster's totals in $SYS, and /health failing while Redis is away."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..engine.reporting import MetricFamily, ReportError, histogram_view
from ..engine.store import StoreError

if TYPE_CHECKING:
    from .node import ClusterNode


class ClusterReporter:
    name = "cluster"

    def __init__(self, node: ClusterNode) -> None:
        self._node = node

    def view(self) -> dict[str, Any]:
        view = self._node.view()
        view["route_propagation_seconds"] = histogram_view(view["route_propagation_seconds"])
        return view

    def families(self) -> list[MetricFamily]:
        view = self.view()
        families = [MetricFamily(name, kind, text, [({}, float(view[key]))])
                    for name, kind, key, text in _FAMILIES]
        families.append(MetricFamily(*_ROUTES, [({}, float(sum(view["nodes"].values())))]))
        families.append(MetricFamily(*_PROPAGATION, histogram=view["route_propagation_seconds"]))
        return families

    def sys_values(self) -> dict[str, str]:
        return self._node.sys_values()

    def health(self) -> str:
        return "" if self._node.available else \
            "cluster mode: Redis is unavailable (refusing connections)"

    def route(self, path: list[str], query: dict[str, str]) -> Any:
        if not path:
            view = self.view()
            view["routes"] = {name: sorted(filters)
                              for name, filters in sorted(self._node.routes.by_node.items())}
            return view
        if path == ["sessions"]:
            return self._sessions(query)
        return None

    def _sessions(self, query: dict[str, str]) -> dict[str, Any]:
        """Every node's persistent sessions, as Redis holds them: a page of them (SCAN's,
        from ``cursor``) and the next page's cursor (None: that was the last)."""
        sessions = self._node.sessions
        if sessions is None:
            raise ReportError(404, "this node keeps no sessions in Redis")
        try:
            cursor = int(query.get("cursor", "0"))
        except ValueError:
            raise ReportError(400, "cursor must be an integer") from None
        from .inspect import SessionReader

        try:
            page, following = SessionReader(sessions.store.connection).page(cursor)
        except StoreError as exc:
            raise ReportError(503, str(exc)) from None
        return {"sessions": [asdict(summary) for summary in page],
                "next": str(following) if following else None}


def documented() -> list[tuple[str, str, str]]:
    """(name, type, help) of every family a node exports, for the metrics reference."""
    return [(name, kind, text) for name, kind, _, text in _FAMILIES] + [_ROUTES, _PROPAGATION]


_ROUTES = ("mqlite_cluster_routes", "gauge", "Filters of other nodes' sessions known here.")
_PROPAGATION = ("mqlite_cluster_route_propagation_seconds", "histogram",
                "Time from a node's route change to its arrival here.")
_FAMILIES = (
    ("mqlite_cluster_available", "gauge", "available",
     "1 while this node is connected to the cluster's Redis and serving; 0 fails closed."),
    ("mqlite_cluster_forwarded_total", "counter", "forwarded",
     "Messages written to other nodes' streams (one per node)."),
    ("mqlite_cluster_received_total", "counter", "received",
     "Messages from other nodes delivered here."),
    ("mqlite_cluster_duplicates_total", "counter", "duplicates",
     "Forwarded messages that arrived twice and were dropped."),
    ("mqlite_cluster_forwards_dropped_total", "counter", "forwards_dropped",
     "QoS 0 forwards not written while Redis was unavailable."),
    ("mqlite_cluster_redis_outages_total", "counter", "outages",
     "Times the connection to Redis was lost."),
    ("mqlite_cluster_takeovers_total", "counter", "takeovers",
     "Client ids this node let go because a client connected to another node."),
    ("mqlite_cluster_sessions_adopted_total", "counter", "sessions_adopted",
     "Persistent sessions this node adopted from nodes that died."),
    ("mqlite_cluster_sessions_fenced_total", "counter", "sessions_fenced",
     "Sessions whose writes Redis refused here: another node owned them by then."),
    ("mqlite_cluster_inbox_pauses_total", "counter", "inbox_pauses",
     "Times reading this node's stream waited for a subscriber's queue to drain."),
    ("mqlite_cluster_local_routes", "gauge", "local_routes",
     "Filters of this node's sessions, as published to the cluster."),
)
