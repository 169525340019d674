"""Where the broker's time goes under one scenario: py-spy samples the broker process while the
load generator runs, and the samples are summed per function.

    python -m bench.profile {A,B,C,E,F,G,H} [--top 25] [--rate 2000] [--raw FILE] [--quick]
    python -m bench.profile C --native     # perf: the compiled build's C functions too

py-spy attaches with ptrace: run as root, or allow it (``kernel.yama.ptrace_scope=0``). With
``--native``, Linux ``perf`` samples the process instead (compiled functions are C functions,
which py-spy does not see), and the report groups the time: the compiled modules, the
interpreter, SQLite, the kernel (system calls, fsync), the C library; with each group's
microseconds per delivered message.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .__main__ import load_result, run_once
from .brokers import BrokerProcess
from .scenarios import SCENARIOS


def summarise(raw: Path, top: int) -> str:
    """Own and inclusive share of the samples per function, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "no samples: did py-spy attach?"
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


# perf's shared objects, grouped into what a reader can act on.
GROUPS = (("mqlite_native", "compiled mqlite (mypyc)"), ("libpython", "interpreter"),
          ("python3", "interpreter"), ("sqlite", "SQLite"), ("kernel", "kernel"),
          ("libc", "C library"), ("_hiredis", "hiredis"), ("msgpack", "msgpack"))


def group_of(dso: str) -> str:
    for needle, name in GROUPS:
        if needle in dso:
            return name
    return dso or "other"


def native_summary(report: str, top: int, us_per_message: float | None) -> str:
    """``perf report --stdio --no-children --sort dso,sym`` summed by group and symbol."""
    groups: collections.Counter[str] = collections.Counter()
    symbols: collections.Counter[str] = collections.Counter()
    for line in report.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].endswith("%"):
            continue
        share = float(parts[0].rstrip("%")) / 100
        dso = parts[1]
        symbol = " ".join(parts[3:]) if parts[2].startswith("[") else " ".join(parts[2:])
        groups[group_of(dso)] += share
        symbols[f"{symbol}  ({group_of(dso)})"] += share

    def shown(share: float) -> str:
        return f"{share:6.1%}" + (f"  {share * us_per_message:5.2f} µs" if us_per_message
                                  else "")
    lines = ["by group:"] + [f"{shown(n)}  {name}" for name, n in groups.most_common()]
    lines += ["", "by function:"] + [f"{shown(n)}  {name}" for name, n in
                                     symbols.most_common(top)]
    return "\n".join(lines)


def py_spy() -> str:
    """The py-spy binary beside this Python (the bench extra installs it), or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=[s.key for s in SCENARIOS if s.kind != "idle"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=2000, help="samples per second")
    parser.add_argument("--raw", help="keep py-spy's collapsed stacks in this file")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke test")
    parser.add_argument("--native", action="store_true",
                        help="sample with perf: C functions (the compiled build) too")
    options = parser.parse_args()
    if options.native:
        native(options)
        return
    scenario = next(s for s in SCENARIOS if s.key == options.scenario)
    args = scenario.quick if options.quick else scenario.args
    raw = Path(options.raw or tempfile.mkstemp(suffix=".txt", prefix="mqlite-profile-")[1])
    broker = BrokerProcess("mqlite")
    try:
        if scenario.kind == "drain":
            load_result("fill", broker, args)  # the queue to drain, not profiled
        spy = subprocess.Popen([py_spy(), "record", "--pid",
                                str(broker.proc.pid), "--rate", str(options.rate), "--format",
                                "raw", "--output", str(raw), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # py-spy attaches; there is no signal to wait on
        if spy.poll() is not None:
            raise SystemExit(f"py-spy could not attach: {spy.stderr.read() if spy.stderr else ''}")
        if scenario.kind == "drain":
            result = load_result("drain", broker, {"count": args["count"]})
        else:
            result = run_once(scenario, broker, args)
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    finally:
        broker.stop()
    print(f"scenario {scenario.key}: {result}")
    print(summarise(raw, options.top))


def native(options: argparse.Namespace) -> None:
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed (apt-get install linux-perf)")
    scenario = next(s for s in SCENARIOS if s.key == options.scenario)
    args = scenario.quick if options.quick else scenario.args
    data = Path(tempfile.mkstemp(suffix=".data", prefix="mqlite-perf-")[1])
    broker = BrokerProcess("mqlite")
    try:
        if scenario.kind == "drain":
            load_result("fill", broker, args)
        record = subprocess.Popen([perf, "record", "-F", str(options.rate), "-g", "-p",
                                   str(broker.proc.pid), "-o", str(data)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # perf attaches; there is no signal to wait on
        cpu_before = broker.cpu_seconds()
        if scenario.kind == "drain":
            result = load_result("drain", broker, {"count": args["count"]})
        else:
            result = run_once(scenario, broker, args)
        cpu = broker.cpu_seconds() - cpu_before
        record.send_signal(signal.SIGINT)
        record.wait(60)
    finally:
        broker.stop()
    report = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children",
                             "--sort", "dso,sym", "-g", "none"], capture_output=True,
                            text=True, timeout=300).stdout
    delivered = result.get("deliveries")
    per_message = cpu / delivered * 1e6 if delivered else None
    print(f"scenario {scenario.key}: {result}")
    if per_message:
        print(f"broker CPU per delivery: {per_message:.2f} µs")
    print(native_summary(report, options.top, per_message))


if __name__ == "__main__":
    main()
