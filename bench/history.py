"""The hot path's history: one record per commit that touches it, appended to
bench/results/history.json, so that a regression shows as a step between two records.

    python -m bench.history [--runs 3] [--note TEXT]

A record holds the commit, which build ran (compiled or pure), the calls per message of
``bench.call_counts`` (mypyc's compiled functions make no profiler events, so in the
compiled build this counts the calls left interpreted) and the broker's CPU per delivery in
scenarios A (QoS 0), C (QoS 1) and G (durable QoS 1), measured by ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mqlite.cli import build_info

from . import call_counts

HISTORY = Path(__file__).parent / "results" / "history.json"
SCENARIOS = ("A", "C", "G")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent).stdout.strip()


def cpu_per_delivery(runs: int) -> dict[str, float]:
    """Broker CPU microseconds per delivered message, by scenario (medians of ``runs``)."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "history.md"
        subprocess.run([sys.executable, "-m", "bench", "--brokers", "mqlite", "--scenarios",
                        ",".join(SCENARIOS), "--runs", str(runs), "--output", str(output)],
                       check=True, stdout=subprocess.DEVNULL)
        table = json.loads(output.with_suffix(".json").read_text())
    return {key: round(table[key]["mqlite"]["broker_cpu"]
                       / table[key]["mqlite"]["deliveries"] * 1e6, 2) for key in SCENARIOS}


def record(runs: int, note: str | None) -> dict[str, Any]:
    count = 20_000
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "subject": _git("log", "-1", "--format=%s"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "build": build_info.running(),
        "calls_per_message": {
            "qos0": round(call_counts.routed(0, False, count), 2),
            "qos1": round(call_counts.routed(1, False, count), 2),
            "persistent": round(call_counts.routed(1, True, count), 2),
            "drain": round(call_counts.drained(count), 2),
        },
        "broker_cpu_us_per_delivery": cpu_per_delivery(runs),
        **({"note": note} if note else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--note", help="what the commit changed, if its subject does not say")
    args = parser.parse_args()
    entry = record(args.runs, args.note)
    history = json.loads(HISTORY.read_text()) if HISTORY.exists() else []
    history.append(entry)
    HISTORY.write_text(json.dumps(history, indent=1) + "\n")
    print(json.dumps(entry, indent=1))
    print(f"appended to {HISTORY}")


if __name__ == "__main__":
    main()
