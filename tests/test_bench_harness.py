"""The benchmark harness runs end to end (quick counts, mqlite only). It asserts no speed,
only that every scenario completes with nothing lost and the report is written."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_run(tmp_path: Path) -> None:
    output = tmp_path / "report.md"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--runs", "1",
                           "--brokers", "mqlite", "--output", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(output.with_suffix(".json").read_text())
    assert set(results) == {"A", "B", "C", "D", "E", "F", "G", "H", "I"}
    for scenario, row in results.items():
        assert row["mqlite"]["lost"] == 0, (scenario, row)
    assert 0 < results["F"]["mqlite"]["value"] <= results["F"]["mqlite"]["p99"]
    assert results["I"]["mqlite"]["p99"] <= results["I"]["mqlite"]["max"]
    assert results["H"]["mqlite"]["deliveries"] == 5_000
    report = output.read_text()
    assert "| A: QoS 0" in report and "| F: latency" in report
    row_a = next(line for line in report.splitlines() if line.startswith("| A: QoS 0"))
    assert "mqlite: " in row_a and " µs, broker " in row_a and "busy" in row_a
    if importlib.util.find_spec("matplotlib") is None:  # the chart is the bench extra's
        assert "(no chart: it needs matplotlib" in report
        assert not output.with_suffix(".png").exists()
    else:
        assert "![benchmark chart](report.png)" in report
        assert output.with_suffix(".png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_connection_memory_reports_the_heap_per_connection() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.connection_memory", "--count", "200"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    per_connection = int(done.stdout.split()[0].replace(",", ""))
    assert 200 < per_connection < 10_000, done.stdout


def test_profile_summarises_py_spy_samples_of_the_broker() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.profile", "C", "--top", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "own time:" in done.stdout and "'lost': 0" in done.stdout, done.stdout


@pytest.mark.slow
def test_cluster_bench_quick_run(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    output = tmp_path / "cluster.md"
    done = subprocess.run([sys.executable, "-m", "bench.cluster", "--workers", "2",
                           "--brokers", "", "--subscribers", "3", "--messages", "50",
                           "--flows", "2", "--per-flow", "50", "--samples", "20",
                           "--out", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["lost"] == {"mqlite --workers 2": 0}
    report = output.read_text()
    assert "| mqlite --workers 2 |" in report and "| mqlite, across two nodes |" in report
    assert results["qos1p"]["mqlite --workers 2"] > 0 and "Persistent QoS 1" in report
