"""How long the test fixtures take: a test broker started and stopped, and a client connected to
it and closed, as the ``mqtt_broker`` and ``mqtt_client`` fixtures do for each test.

    python -m bench.testing_fixtures [--runs 50]

The budget is 50 ms for each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from mqlite.testing import TestClient, broker


def timed(runs: int, action: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    def broker_cycle() -> None:
        with broker():
            pass

    def manual_broker_cycle() -> None:
        with broker(clock="manual"):
            pass

    with broker() as shared:
        def client_cycle() -> None:
            with TestClient(shared, client_id="bench"):
                pass

        rows = [("mqtt_broker (start + stop)", timed(args.runs, broker_cycle)),
                ("mqtt_broker, clock='manual'", timed(args.runs, manual_broker_cycle)),
                ("mqtt_client (connect + close)", timed(args.runs, client_cycle))]
    for name, times in rows:
        print(f"{name:32} median {statistics.median(times):6.1f} ms, "
              f"max {max(times):6.1f} ms over {len(times)} runs")


if __name__ == "__main__":
    main()
