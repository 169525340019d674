"""Where the broker's time goes under one scenario: py-spy samples the broker process while the
load generator runs, and the samples are summed per function.

    python -m bench.profile {A,B,C,E,F,G} [--top 25] [--rate 2000] [--raw FILE] [--quick]

py-spy attaches with ptrace: run as root, or allow it (``kernel.yama.ptrace_scope=0``).
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
    options = parser.parse_args()
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


if __name__ == "__main__":
    main()
