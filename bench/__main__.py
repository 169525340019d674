"""Broker benchmarks, mqlite side by side with mosquitto, amqtt and Aedes in one run.

    python -m bench [--brokers mqlite,mosquitto,amqtt,aedes,rabbitmq] [--scenarios A,B,...,I]
                    [--runs 3] [--quick]

A change is measured against the commit before it in the same run with the broker
"mqlite-base": MQLITE_BENCH_BASE_PYTHON names the python of a venv where that commit is
installed (``pip install <checkout>``).

Each broker runs pinned to CPU 0 and the load generator (bench/load.py) to CPU 1; every
scenario runs three times on a fresh broker and the median is reported, with the broker's and
the generator's CPU time so a reader can see which was the bottleneck. Results are written to
bench/results/: latest.md (the table), latest.json (the numbers), latest.png (the chart).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .brokers import AEDES_VERSION, AMQTT_VERSION, BROKER_CPU, LOAD_CPU, BrokerProcess
from .scenarios import SCENARIOS, Scenario


def _load(kind: str, port: int, args: dict[str, int]) -> subprocess.Popen[str]:
    command = ["taskset", "-c", LOAD_CPU, sys.executable, "-m", "bench.load", kind,
               "--port", str(port)]
    for name, value in args.items():
        if name == "persistent":
            command += ["--persistent"] if value else []
        else:
            command += [f"--{name}", str(value)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)


def load_result(kind: str, broker: BrokerProcess, args: dict[str, int]) -> dict[str, float]:
    load = _load(kind, broker.port, args)
    out, _ = load.communicate(timeout=600)
    if not out:
        raise RuntimeError(f"the load generator failed for {broker.name} ({kind})")
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    return result


def run_drain(broker: BrokerProcess, args: dict[str, int]) -> dict[str, float]:
    """Scenario E: fill an offline session's queue and time the drain; then fill it again,
    kill -9 the broker, restart it on the same files and count what survived."""
    load_result("fill", broker, args)
    cpu_before = broker.cpu_seconds()
    drained = load_result("drain", broker, {"count": args["count"]})
    broker_cpu = broker.cpu_seconds() - cpu_before
    load_result("fill", broker, args)
    broker.kill_and_restart()
    survived = load_result("drain", broker, {"count": args["count"]})
    return {"elapsed": drained["elapsed"], "deliveries": drained["deliveries"],
            "survived": survived["deliveries"], "lost": args["count"] - survived["deliveries"],
            "broker_cpu": broker_cpu, "generator_cpu": drained["generator_cpu"]}


def run_deep(broker: BrokerProcess, args: dict[str, int]) -> dict[str, float]:
    """Scenario H: the broker's memory before and after queueing a deep offline queue, the
    time to queue it and the time to drain it."""
    rss_before = broker.rss_kib()
    filled = load_result("fill", broker, args)
    rss_growth = broker.rss_kib() - rss_before
    cpu_before = broker.cpu_seconds()
    drained = load_result("drain", broker, {"count": args["count"]})
    return {"elapsed": drained["elapsed"], "fill_seconds": filled["elapsed"],
            "rss_growth_kib": rss_growth, "deliveries": drained["deliveries"],
            "lost": args["count"] - drained["deliveries"],
            "broker_cpu": broker.cpu_seconds() - cpu_before,
            "generator_cpu": drained["generator_cpu"]}


def run_once(scenario: Scenario, broker: BrokerProcess, args: dict[str, int]) -> dict[str, float]:
    if scenario.kind == "drain":
        return run_drain(broker, args)
    if scenario.kind == "deep":
        return run_deep(broker, args)
    cpu_before = broker.cpu_seconds()
    rss_before = broker.rss_kib()
    load = _load(scenario.kind, broker.port, args)
    assert load.stdout is not None and load.stdin is not None
    line = load.stdout.readline()
    if not line:
        raise RuntimeError(f"the load generator failed for {broker.name} {scenario.key}")
    result: dict[str, float] = json.loads(line)
    if scenario.kind == "idle":
        time.sleep(0.5)  # let the broker settle before reading its memory
        result["rss_kib"] = broker.rss_kib() - rss_before
        load.stdin.write("done\n")
        load.stdin.flush()
    load.wait(60)
    result["broker_cpu"] = broker.cpu_seconds() - cpu_before
    return result


def metrics(scenario: Scenario, result: dict[str, float], expected: int) -> dict[str, float]:
    if scenario.kind == "drain":
        return {"value": result["elapsed"], "seconds": result["elapsed"], "lost": result["lost"],
                "drain_lost": expected - result["deliveries"],
                "deliveries": result["deliveries"]}
    if scenario.kind == "deep":
        return {"value": result["elapsed"], "seconds": result["elapsed"], "lost": result["lost"],
                "fill_seconds": result["fill_seconds"], "rss_growth_kib": result["rss_growth_kib"],
                "deliveries": result["deliveries"]}
    if scenario.kind in ("latency", "hol"):
        return {"value": result["p50_us"], "p99": result["p99_us"], "max": result["max_us"],
                "seconds": result["elapsed"], "lost": result["lost"],
                "deliveries": result["deliveries"]}
    if scenario.kind == "idle":
        count = result["connections"]
        return {"value": result["rss_kib"] / max(count, 1), "seconds": result["elapsed"],
                "lost": expected - count}
    per_second = result["deliveries"] / result["elapsed"]
    return {"value": per_second, "seconds": result["elapsed"], "lost": result["lost"],
            "deliveries": result["deliveries"]}


# What mqlite is compared with, a ratio column each (RabbitMQ in C and G only).
PEERS = ("mosquitto", "amqtt", "aedes", "rabbitmq")
SATURATED = 0.9  # a side busy for this share of the run is the one that set the pace


def cost_and_pace(cell: dict[str, float]) -> str:
    """Broker CPU per delivered message, and which side was saturated (CPU over the run's
    time): a ratio of throughputs means something only when it is the broker."""
    deliveries = cell.get("deliveries", 0.0)
    seconds = cell["seconds"]
    if not deliveries or not seconds:
        return "-"
    busy = {"broker": cell["broker_cpu"] / seconds, "generator": cell["generator_cpu"] / seconds}
    side, share = max(busy.items(), key=lambda item: item[1])
    pace = f"{side} saturated" if share >= SATURATED else "neither saturated"
    return (f"{cell['broker_cpu'] / deliveries * 1e6:,.2f} µs, broker {busy['broker']:.0%} / "
            f"generator {busy['generator']:.0%} busy, {pace}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="mqlite,mosquitto,amqtt,aedes")
    parser.add_argument("--scenarios", default="A,B,C,D,E,F,G,H,I")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke test")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "latest.md"))
    options = parser.parse_args()
    brokers = options.brokers.split(",")
    chosen = [s for s in SCENARIOS if s.key in options.scenarios.split(",")]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for scenario in chosen:
        args = scenario.quick if options.quick else scenario.args
        names = [*(b for b in brokers if (not scenario.only or b in scenario.only
                                          or b == "mqlite-base")
                   and (b != "rabbitmq" or scenario.durable_peer)),
                 *(v for v in scenario.variants if "mqlite" in brokers)]
        for name in names:
            runs = []
            broker = BrokerProcess(name)
            try:
                for index in range(options.runs):
                    if scenario.kind in ("idle", "deep") and index:
                        # Memory is measured on a fresh broker: a reused one keeps what the
                        # last run freed, and would show no growth (H's store, too, starts
                        # empty each run).
                        broker.stop()
                        broker = BrokerProcess(name)
                    result = run_once(scenario, broker, args)
                    measured = {**metrics(scenario, result, args["count"]),
                                "broker_cpu": result["broker_cpu"],
                                "generator_cpu": result["generator_cpu"]}
                    runs.append(measured)
                    shown = f"{measured['value']:,.1f} {scenario.unit}"
                    if scenario.kind in ("latency", "hol"):
                        shown = (f"p50 {measured['value']:,.0f} µs, p99 {measured['p99']:,.0f} "
                                 f"µs, max {measured['max']:,.0f} µs")
                    elif scenario.kind == "deep":
                        shown = (f"queued in {measured['fill_seconds']:.1f} s (RSS "
                                 f"+{measured['rss_growth_kib'] / 1024:,.1f} MiB), drained in "
                                 f"{measured['value']:.2f} s")
                    print(f"[{scenario.key}] {name:9} run {index + 1}/{options.runs}: {shown} in "
                          f"{measured['seconds']:.2f} s, lost {measured['lost']:.0f}, "
                          f"broker cpu {measured['broker_cpu']:.2f} s, generator cpu "
                          f"{measured['generator_cpu']:.2f} s", flush=True)
            finally:
                broker.stop()
            table.setdefault(scenario.key, {})[name] = {
                key: statistics.median(run[key] for run in runs) for key in runs[0]}
    output = Path(options.output)
    chart = output.with_suffix(".png")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = describe_machine()
    drawing = _chart_writer()
    report = render(chosen, brokers, table, options, when, where,
                    chart.name if drawing is not None else None)
    print(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    output.with_suffix(".json").write_text(json.dumps(table, indent=2))
    if drawing is None:
        print(f"wrote {output} and {output.with_suffix('.json').name} (no chart: "
              f"pip install 'mqlite[bench]' for it)")
        return
    drawing(chart, chosen, brokers, table,
            f"Measured {when} on {where}; median of {options.runs} runs"
            f"{' (quick counts)' if options.quick else ''}",
            "\n".join(f"{name}: {broker_version(name)}" for name in brokers)
            + f"\n\nbroker on CPU {BROKER_CPU}, load generator\non CPU {LOAD_CPU} (taskset)")
    print(f"wrote {output}, {output.with_suffix('.json').name} and {chart.name}")


def _chart_writer() -> Any:
    """The chart needs matplotlib (the bench extra); without it the report has none."""
    try:
        from .chart import write_chart
    except ImportError:
        return None
    return write_chart


def _not_run(scenario: Scenario, name: str) -> str:
    """Why a broker asked for has no cell in a scenario's row."""
    if name == "rabbitmq" and not scenario.durable_peer:
        return "not run: a durable peer, for C and G"
    if scenario.only and name not in scenario.only and scenario.note:
        return f"not run: {scenario.note}"
    return "not run"


def broker_version(name: str) -> str:
    if name == "mosquitto":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=10)
            return (done.stdout or done.stderr).splitlines()[0].replace("mosquitto ", "")
        return "version unknown"
    if name == "amqtt":
        return f"version {AMQTT_VERSION} (PyPI)"
    if name == "aedes":
        return f"version {AEDES_VERSION} (npm), Node {_node_version()}"
    if name == "rabbitmq":
        return "Debian's rabbitmq-server with its MQTT plugin, durable queues"
    if name == "mqlite-base":
        return "the earlier commit (MQLITE_BENCH_BASE_PYTHON)"
    return "this checkout, SQLite sync=full"


def _node_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    return "unknown"


def describe_machine() -> str:
    """CPU model and count, OS and Python: what a reader needs to compare numbers."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def render(chosen: list[Scenario], brokers: list[str],
           table: dict[str, dict[str, dict[str, float]]], options: argparse.Namespace,
           when: str, where: str, chart: str | None) -> str:
    # The earlier commit first, when measured beside this one (brokers.baseline_python).
    peers = [*(["mqlite-base"] if "mqlite-base" in brokers else []), *PEERS]
    lines = [f"Measured {when} on {where}; median of {options.runs} runs"
             f"{' (quick counts)' if options.quick else ''}; broker on CPU {BROKER_CPU}, load "
             f"generator on CPU {LOAD_CPU} (taskset).",
             "", "| scenario | " + " | ".join(brokers) + " | "
             + " | ".join(f"mqlite / {other}" for other in peers)
             + " | broker CPU per delivery; busy shares |",
             "|---" * (len(brokers) + len(peers) + 2) + "|"]
    for scenario in chosen:
        row = table[scenario.key]
        cells = []
        for name in brokers:
            if name not in row:
                cells.append(_not_run(scenario, name))
                continue
            cell = row[name]
            if scenario.kind == "deep":
                text = (f"queued in {cell['fill_seconds']:.1f} s, RSS "
                        f"+{cell['rss_growth_kib'] / 1024:,.1f} MiB; drained in "
                        f"{cell['value']:.2f} s ({cell['deliveries'] / cell['value']:,.0f} "
                        f"msg/s)")
                if cell["lost"]:
                    text += f", {cell['lost']:,.0f} never delivered"
            elif scenario.kind == "hol":
                text = (f"p50 {cell['value']:,.0f} µs, p99 {cell['p99']:,.0f} µs, "
                        f"max {cell['max']:,.0f} µs")
            elif scenario.kind == "idle":
                text = f"{cell['value']:,.2f} KiB, {cell['seconds']:.2f} s"
            elif scenario.kind == "latency":
                text = f"p50 {cell['value']:,.0f} µs, p99 {cell['p99']:,.0f} µs"
            elif scenario.kind == "drain":
                count = scenario.args["count"] if not options.quick else scenario.quick["count"]
                text = f"{cell['value']:.3f} s"
                if cell.get("drain_lost"):
                    text += f" ({cell['drain_lost']:,.0f} never delivered)"
                text += f"; {count - cell['lost']:,.0f} of {count:,} after kill -9"
            else:
                text = f"{cell['value']:,.0f} {scenario.unit}"
            for variant in scenario.variants:
                if name == "mqlite" and variant in row:
                    text += f"; {row[variant]['value']:,.0f} with --sync normal"
            if cell["lost"] and scenario.kind not in ("drain", "deep"):
                text += f" ({cell['lost']:.0f} lost)"
            cpu = f" (cpu {cell['broker_cpu']:.1f} s / {cell['generator_cpu']:.1f} s)"
            cells.append(text + cpu)
        ratios = []
        for other in peers:
            if "mqlite" not in row or other not in row or not row[other]["value"]:
                ratios.append("")
            elif scenario.kind == "drain" and row[other].get("drain_lost"):
                ratios.append(f"{other} delivered none")
            elif scenario.kind == "drain":
                ratios.append(f"{row['mqlite']['value'] / row[other]['value']:.2f}x the time")
            elif scenario.kind == "deep":
                memory = row["mqlite"]["rss_growth_kib"] / max(row[other]["rss_growth_kib"], 1)
                drain = row["mqlite"]["value"] / row[other]["value"]
                ratios.append(f"{drain:.2f}x the drain time, {memory:.3f}x the memory growth")
            elif scenario.kind == "hol":
                worst = row["mqlite"]["max"] / row[other]["max"]
                p99 = row["mqlite"]["p99"] / row[other]["p99"]
                ratios.append(f"{worst:.2f}x the max, {p99:.2f}x the p99")
            elif scenario.kind == "latency":
                p50 = row["mqlite"]["value"] / row[other]["value"]
                p99 = row["mqlite"]["p99"] / row[other]["p99"]
                ratios.append(f"{p50:.2f}x the p50, {p99:.2f}x the p99")
            elif scenario.kind == "idle":
                memory = row["mqlite"]["value"] / row[other]["value"]
                seconds = row["mqlite"]["seconds"] / row[other]["seconds"]
                ratios.append(f"{memory:.2f}x the memory, {seconds:.2f}x the time")
            else:
                ratios.append(f"{row['mqlite']['value'] / row[other]['value']:.2f}x")
        costs = "; ".join(f"{name}: {cost_and_pace(row[name])}" for name in brokers
                          if name in row and cost_and_pace(row[name]) != "-") or "-"
        lines.append(f"| {scenario.key}: {scenario.title} | " + " | ".join(cells) + " | "
                     + " | ".join(ratios) + f" | {costs} |")
    lines += ["", "cpu: broker / load generator CPU seconds for the median run; the last column "
              "divides the broker's by the messages delivered, and the busy shares are CPU "
              "seconds over the run's seconds (a side at 90% or more set the pace). For D the "
              "value is broker memory per connection and the time to connect them all, for E and H "
              "the time to drain, for F and I the latency from send to receipt; lower is better "
              "there. H's memory is the broker's RSS growth while the queue filled.", "",
              f"![benchmark chart]({chart})" if chart else
              "(no chart: it needs matplotlib, pip install 'mqlite[bench]')"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
