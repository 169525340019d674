"""How a plug-in shows itself to operators without the kernel or the http side knowing it:
it registers a ``Reporter`` (server.py wires it), which gives its ``$SYS`` values, its
Prometheus families, its view in ``/api/v1/stats`` and ``/api/v1/<name>`` (and any path
under that), and its health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .stats import Histogram


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One Prometheus family: counter or gauge samples (labels, value), or a histogram."""

    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)
    histogram: dict[str, Any] | None = None  # histogram_view()'s form


class ReportError(Exception):
    """A request a reporter cannot answer: its HTTP status and why."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class Reporter(Protocol):
    name: str  # its key in /api/v1/stats and its path, /api/v1/<name>

    def view(self) -> Any:
        """JSON-ready numbers (its part of /api/v1/stats)."""

    def families(self) -> list[MetricFamily]:
        """Its Prometheus families."""

    def sys_values(self) -> dict[str, str]:
        """Its values under $SYS/broker/."""

    def health(self) -> str:
        """"" while healthy, else why not."""

    def route(self, path: list[str], query: dict[str, str]) -> Any:
        """GET /api/v1/<name>/<path...> (``path`` empty: its page): JSON-ready; None for no
        such path; ReportError for a request it cannot answer."""


def histogram_view(histogram: Histogram | None) -> dict[str, Any]:
    """A histogram as JSON (and as /metrics reads it back)."""
    if histogram is None:
        return {"count": 0, "sum": 0.0, "buckets": []}
    return {"count": histogram.count, "sum": histogram.sum,
            "buckets": [[bound, count] for bound, count in histogram.cumulative()
                        if bound != float("inf")]}
