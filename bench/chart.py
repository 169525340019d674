"""The benchmark report as a bar chart: one panel per scenario, one bar per broker, each panel
in its own unit and saying whether higher or lower is better."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display here, none needed
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .scenarios import Scenario

COLOURS = {"mqlite": "#1f77b4", "mosquitto": "#7f7f7f", "amqtt": "#ff7f0e",
           "aedes": "#9467bd"}
LOWER_IS_BETTER = {"idle", "drain", "latency", "deep", "hol"}


def _label(value: float, kind: str) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if kind in ("drain", "deep"):
        return f"{value:.3f} s"
    if value >= 100 or kind in ("latency", "hol"):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _panel(axes: Axes, scenario: Scenario, brokers: list[str],
           row: dict[str, dict[str, float]]) -> None:
    names = [name for name in brokers if name in row]
    decimals = 3 if scenario.kind in ("drain", "deep") else 1 if scenario.kind == "idle" else 0
    better = "lower" if scenario.kind in LOWER_IS_BETTER else "higher"
    unit = {"idle": "KiB per connection", "drain": "seconds to drain",
            "deep": "seconds to drain", "latency": "µs (p50 solid, p99 light)",
            "hol": "µs (p99 solid, max light)"}.get(scenario.kind, scenario.unit)
    axes.set_title(f"{scenario.key}: {scenario.title}\n{unit}, {better} is better", fontsize=8)
    positions = range(len(names))
    solid, light = ("p99", "max") if scenario.kind == "hol" else ("value", "p99")
    values = [row[name][solid] for name in names]
    colours = [COLOURS.get(name, "#2ca02c") for name in names]
    if scenario.kind in ("latency", "hol"):
        tails = [row[name][light] for name in names]
        axes.bar(positions, tails, color=colours, alpha=0.35)
        for x, tail in zip(positions, tails, strict=True):
            axes.annotate(_label(tail, scenario.kind), (x, tail), ha="center", va="bottom",
                          fontsize=7)
    bars = axes.bar(positions, values, color=colours)
    for bar, name, value in zip(bars, names, values, strict=True):
        text = _label(value, scenario.kind)
        if scenario.kind == "drain" and row[name].get("drain_lost"):
            text = "none\ndelivered"
        elif scenario.kind == "drain" and row[name].get("lost"):
            text += f"\n{row[name]['lost']:,.0f} lost on kill -9"
        elif row[name].get("lost"):
            text += "\n(lost some)"
        axes.annotate(text, (bar.get_x() + bar.get_width() / 2, value), ha="center",
                      va="bottom" if scenario.kind not in ("latency", "hol") else "top",
                      fontsize=7,
                      color="black" if scenario.kind not in ("latency", "hol") else "white")
    axes.set_xticks(list(positions), names, fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.{decimals}f}"))
    axes.margins(y=0.2)


def write_chart(path: Path, chosen: list[Scenario], brokers: list[str],
                table: dict[str, dict[str, dict[str, float]]], caption: str,
                note: str) -> None:
    columns = 4
    rows = (len(chosen) + columns - 1) // columns
    figure, grid = plt.subplots(rows, columns, figsize=(4 * columns, 3.4 * rows),
                                squeeze=False)
    cells = [axes for line in grid for axes in line]
    for axes, scenario in zip(cells, chosen, strict=False):
        _panel(axes, scenario, brokers, table[scenario.key])
    for axes in cells[len(chosen):]:
        axes.axis("off")
    if len(cells) > len(chosen):
        cells[len(chosen)].text(0.0, 0.5, note, fontsize=8, va="center", wrap=True)
    figure.suptitle(caption, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
