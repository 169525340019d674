"""The benchmark harness runs end to end (quick counts, mqlite only). It asserts no speed,
only that every scenario completes with nothing lost and the report is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_run(tmp_path: Path) -> None:
    output = tmp_path / "report.md"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--runs", "1",
                           "--brokers", "mqlite", "--output", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(output.with_suffix(".json").read_text())
    assert set(results) == {"A", "B", "C", "D", "E", "F", "G"}
    for scenario, row in results.items():
        assert row["mqlite"]["lost"] == 0, (scenario, row)
    assert 0 < results["F"]["mqlite"]["value"] <= results["F"]["mqlite"]["p99"]
    report = output.read_text()
    assert "| A: QoS 0" in report and "| F: latency" in report
    assert "![benchmark chart](report.png)" in report
    assert output.with_suffix(".png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
