"""Authenticated connects beside a live stream: mqlite and mosquitto read the same password
file (``$7$`` PBKDF2-SHA512 entries), every client authenticates, and a QoS 0 stream between
two other clients measures what the connects cost everyone else.

    python -m bench.auth_connects [--brokers mqlite,mosquitto] [--rate 1000] [--seconds 5]
                                  [--runs 3]

Scenarios: ``stream-only``: no connects, the stream's latency floor on this machine;
``cached``: 100 users, so after the first hundred connects every (user, password)
was verified before; ``fresh``: every connect is a user not seen before, so each one costs a
PBKDF2 hash, at mosquitto_passwd's 101 iterations and at 1,000. Each broker runs on CPU 0
(its hashing threads too), the generator on CPU 1. Writes bench/results/auth_latest.md.
amqtt and Aedes are not in this run: neither reads mosquitto's password file format.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from mqlite.broker.security.password_file import new_hash, write_entries

from .brokers import BROKER_CPU, LOAD_CPU, BrokerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "auth_latest.md"


class Scenario(NamedTuple):
    name: str
    fresh: bool  # every connect a user not seen before
    iterations: int
    connects: bool = True  # False: the stream alone, the floor the others compare with


SCENARIOS = [
    Scenario("stream-only", False, 101, connects=False),
    Scenario("cached", False, 101),
    Scenario("fresh", True, 101),
    Scenario("fresh-1000", True, 1000),
]


def _write_users(directory: Path, count: int, iterations: int) -> tuple[Path, Path]:
    """The password file and the generator's list of the same users' passwords."""
    entries: dict[str, str] = {}
    lines: list[str] = []
    for number in range(count):
        user, password = f"user{number}", f"password-{number}"
        entries[user] = new_hash(password, iterations).encode()
        lines.append(f"{user} {password}\n")
    passwords = directory / "passwords"
    write_entries(str(passwords), entries)
    users = directory / "users"
    users.write_text("".join(lines))
    return passwords, users


def _run_once(broker_name: str, scenario: Scenario, rate: int, seconds: float,
              files: tuple[Path, Path]) -> dict[str, float]:
    passwords, users = files
    rate = rate if scenario.connects else 0
    broker = BrokerProcess(broker_name, password_file=passwords, nodelay=True)
    try:
        cpu_before = broker.cpu_seconds()
        out = subprocess.run(
            ["taskset", "-c", LOAD_CPU, sys.executable, "-m", "bench.auth_load",
             "--port", str(broker.port), "--users", str(users), "--rate", str(rate),
             "--seconds", str(seconds)],
            capture_output=True, text=True, timeout=300, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"the generator failed against {broker_name}: {out.stderr}")
        result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
        result["broker_cpu_s"] = broker.cpu_seconds() - cpu_before
        return result
    finally:
        broker.stop()


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.auth_connects")
    parser.add_argument("--brokers", default="mqlite,mosquitto")
    parser.add_argument("--rate", type=int, default=1000, help="connects a second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    brokers = args.brokers.split(",")
    results: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as temporary:
        os.chmod(temporary, 0o755)  # mosquitto, started as root, reads it as itself
        for scenario in SCENARIOS:
            count = int(args.rate * args.seconds) + 10 if scenario.fresh else 100
            directory = Path(temporary) / scenario.name
            directory.mkdir()
            files = _write_users(directory, count, scenario.iterations)
            for name in brokers:
                runs = [_run_once(name, scenario, args.rate, args.seconds, files)
                        for _ in range(args.runs)]
                results[(scenario.name, name)] = median = _median(runs)
                print(f"{scenario.name:11} {name:10} {median['connects_per_s']:7.0f} connects/s"
                      f"  connect p99 {median['connect_p99_ms']:6.2f} ms"
                      f"  stream p99 {median['latency_p99_ms']:6.2f} ms"
                      f"  max {median['latency_max_ms']:6.1f} ms"
                      f"  lost {median['lost']:.0f}  broker CPU {median['broker_cpu_s']:.2f} s"
                      f"  generator CPU {median['load_cpu_s']:.2f} s", flush=True)
    _write_report(brokers, results, args)


def _write_report(brokers: list[str], results: dict[tuple[str, str], dict[str, float]],
                  args: argparse.Namespace) -> None:
    lines = [
        "# Authenticated connects beside a QoS 0 stream (`python -m bench.auth_connects`)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, Python "
        f"{platform.python_version()}; broker on CPU {BROKER_CPU}, generator on CPU "
        f"{LOAD_CPU}; {args.rate} connects/s offered for {args.seconds:g} s beside a "
        f"2,000 messages/s QoS 0 stream; median of {args.runs} runs.",
        "",
        "| scenario | broker | connects/s | connect p99 ms | stream p50 ms | stream p99 ms "
        "| stream max ms | lost | broker CPU s | generator CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        for name in brokers:
            r = results[(scenario.name, name)]
            lines.append(
                f"| {scenario.name} ({scenario.iterations if scenario.connects else 0} "
                f"iterations) | {name} "
                f"| {r['connects_per_s']:.0f} | {r['connect_p99_ms']:.2f} "
                f"| {r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} "
                f"| {r['latency_max_ms']:.1f} | {r['lost']:.0f} | {r['broker_cpu_s']:.2f} "
                f"| {r['load_cpu_s']:.2f} |")
    if "mqlite" in brokers and "mosquitto" in brokers:
        lines += ["", "Ratios, mqlite / mosquitto (stream p99: lower is better):", ""]
        for scenario in SCENARIOS:
            ours, theirs = results[(scenario.name, "mqlite")], results[(scenario.name,
                                                                        "mosquitto")]
            if not scenario.connects:
                continue
            lines.append(
                f"- {scenario.name}: connects/s "
                f"{ours['connects_per_s'] / theirs['connects_per_s']:.2f}x, stream p99 "
                f"{ours['latency_p99_ms'] / theirs['latency_p99_ms']:.2f}x, broker CPU "
                f"{ours['broker_cpu_s'] / theirs['broker_cpu_s']:.2f}x")
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
