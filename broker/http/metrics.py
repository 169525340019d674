"""What the broker measures, read when asked: ``snapshot()`` for /api/v1/stats and the status
page, ``exposition()`` for /metrics (Prometheus text format 0.0.4). Counters come from
:class:`~mqlite.broker.engine.stats.Stats`; gauges are read off the state (sessions, queues,
connections) at the time of the request, so the hot path counts nothing it need not."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from heapq import nlargest
from typing import Any, Protocol

from ..engine.connection import CONNECTED, Connection
from ..engine.core import BrokerCore
from ..engine.process_stats import process
from ..engine.reporting import histogram_view
from ..net.listeners import Listener


class RunningBroker(Protocol):
    """What the HTTP side reads of the running broker (the event loop provides it)."""

    core: BrokerCore
    listeners: list[Listener]
    connections: dict[Connection, None]  # the open ones

    def health(self) -> str:
        """"" while healthy; else why not."""


def snapshot(broker: RunningBroker) -> dict[str, Any]:
    """Every number, as JSON-ready values."""
    core = broker.core
    stats = core.stats
    by_listener = {listener.name: 0 for listener in broker.listeners
                   if not listener.config.http}
    for conn in broker.connections:
        if conn.state == CONNECTED:
            by_listener[conn.listener] = by_listener.get(conn.listener, 0) + 1
    totals = core.sessions.totals()
    store = core.store
    refused = dict(stats.refused)
    if stats.connections_refused:
        refused["max_connections"] = stats.connections_refused
    return {
        "uptime_seconds": time.monotonic() - core.started,
        "clients_connected": by_listener,
        "connections_total": stats.connections_total,
        "connections_refused": refused,
        "sessions": {"online": totals.online, "offline": totals.offline},
        "sessions_expired": stats.sessions_expired,
        "subscriptions": totals.subscriptions,
        "retained_messages": core.retained.applications,  # as /api/v1/retained lists them
        "messages_received": dict(zip("012", stats.received_by_qos, strict=True)),
        "messages_sent": dict(zip("012", stats.sent_by_qos, strict=True)),
        "messages_dropped": dict(stats.dropped),
        "publish_bytes_received": stats.publish_bytes_received,
        "publish_bytes_sent": stats.publish_bytes_sent,
        "bytes_received": stats.bytes_received,
        "bytes_sent": stats.bytes_sent,
        "queued_messages": totals.queued,
        "deepest_queue": {"client_id": totals.deepest_id, "messages": totals.deepest},
        "deepest_queues": [[s.client_id, s.queued] for s in nlargest(
            5, (s for s in core.sessions.by_id.values() if s.queue or s.stored_queued),
            key=lambda s: s.queued)],
        "queued_bytes_stored": core.queued_bytes_stored,
        "inflight_messages": totals.inflight,
        "paused_publishers": core.paused_publishers(),
        "publisher_pauses": stats.publisher_pauses,
        "stalled_sessions": stats.stalled_sessions,
        "store_commits": getattr(store, "commits", 0),
        "store_syncs": getattr(store, "wal_syncs", 0),
        "store_commit_seconds": histogram_view(getattr(store, "commit_seconds", None)),
        "loop_turn_seconds": histogram_view(stats.loop_turn_seconds),
        # The plug-ins' parts (their reporters); these keys are there even without them.
        "bridges": [],
        "cluster": None,
        **{reporter.name: reporter.view() for reporter in core.reporters},
        "process": process(),
    }


def exposition(broker: RunningBroker) -> str:
    """The Prometheus text format (0.0.4)."""
    numbers = snapshot(broker)
    out: list[str] = []

    def family(name: str, kind: str, text: str,
               samples: Iterable[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{_labels(labels)} {_number(value)}")

    def one(name: str, kind: str, text: str, value: float) -> None:
        family(name, kind, text, [({}, value)])

    def by(label: str, values: dict[str, Any]) -> list[tuple[dict[str, str], float]]:
        return [({label: key}, value) for key, value in sorted(values.items())]

    one("mqlite_healthy", "gauge", "1 while /health answers 200; 0 while it answers 503.",
        0 if broker.health() else 1)
    one("mqlite_store_failing", "gauge",
        "1 while the store's last commit failed (nothing of its turn was acknowledged).",
        1 if broker.core.store_error is not None else 0)
    family("mqlite_clients_connected", "gauge", "Clients connected, by listener.",
           by("listener", numbers["clients_connected"]))
    one("mqlite_connections_total", "counter", "MQTT connections accepted.",
        numbers["connections_total"])
    family("mqlite_connections_refused_total", "counter",
           "Connections refused, by reason (the CONNACK reason code's name).",
           by("reason", numbers["connections_refused"]))
    family("mqlite_sessions", "gauge", "Sessions, online or offline.",
           by("state", numbers["sessions"]))
    one("mqlite_subscriptions", "gauge", "Subscriptions over all sessions.",
        numbers["subscriptions"])
    one("mqlite_retained_messages", "gauge", "Retained messages (but the broker's own $SYS).",
        numbers["retained_messages"])
    family("mqlite_messages_received_total", "counter", "PUBLISH packets received, by QoS.",
           by("qos", numbers["messages_received"]))
    family("mqlite_messages_sent_total", "counter", "PUBLISH packets sent, by QoS.",
           by("qos", numbers["messages_sent"]))
    family("mqlite_messages_dropped_total", "counter", "Messages dropped, by reason.",
           by("reason", numbers["messages_dropped"]))
    one("mqlite_bytes_received_total", "counter", "Bytes read from clients.",
        numbers["bytes_received"])
    one("mqlite_bytes_sent_total", "counter", "Bytes written to clients.",
        numbers["bytes_sent"])
    one("mqlite_queued_messages", "gauge", "Messages queued, over all sessions.",
        numbers["queued_messages"])
    one("mqlite_deepest_queue_messages", "gauge", "Messages in the deepest session queue.",
        numbers["deepest_queue"]["messages"])
    one("mqlite_inflight_messages", "gauge", "QoS 1/2 deliveries awaiting acknowledgement.",
        numbers["inflight_messages"])
    one("mqlite_queued_bytes_stored", "gauge",
        "Payload and topic bytes queued by persistent sessions (against max_store_bytes).",
        numbers["queued_bytes_stored"])
    one("mqlite_paused_publishers", "gauge", "Publishers paused by flow control.",
        numbers["paused_publishers"])
    one("mqlite_publisher_pauses_total", "counter",
        "Times a publisher was paused for a session that was draining.",
        numbers["publisher_pauses"])
    one("mqlite_stalled_sessions_total", "counter",
        "Times a session stopped draining while a publisher waited for it.",
        numbers["stalled_sessions"])
    one("mqlite_store_commits_total", "counter", "Store commits.", numbers["store_commits"])
    one("mqlite_store_syncs_total", "counter", "Store WAL fsyncs.", numbers["store_syncs"])
    _histogram_family(out, "mqlite_store_commit_seconds", "Time a store commit takes.",
                      numbers["store_commit_seconds"])
    _histogram_family(out, "mqlite_loop_turn_seconds",
                      "Time the event loop spends on one turn, waiting excluded.",
                      numbers["loop_turn_seconds"])
    for reporter in broker.core.reporters:  # the plug-ins' families
        for found in reporter.families():
            if found.histogram is not None:
                _histogram_family(out, found.name, found.help, found.histogram)
            else:
                family(found.name, found.kind, found.help, found.samples)
    for name, value in numbers["process"].items():
        kind = "counter" if name.endswith("_total") else "gauge"
        one(name, kind, name.removeprefix("process_").replace("_", " ").capitalize() + ".",
            value)
    return "\n".join(out) + "\n"


def _histogram_family(out: list[str], name: str, text: str, numbers: dict[str, Any]) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} histogram")
    buckets: Sequence[Sequence[float]] = numbers["buckets"]
    for bound, count in buckets:
        out.append(f'{name}_bucket{{le="{_number(bound)}"}} {count}')
    out.append(f'{name}_bucket{{le="+Inf"}} {numbers["count"]}')
    out.append(f"{name}_count {numbers['count']}")
    out.append(f"{name}_sum {_number(numbers['sum'])}")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
