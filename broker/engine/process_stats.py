"""The broker process's own numbers, read from /proc when asked (for /metrics and $SYS)."""

from __future__ import annotations

import os
import resource
import time

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def memory() -> tuple[int, int]:
    """(virtual, resident) bytes."""
    with open("/proc/self/statm", encoding="ascii") as file:
        virtual, resident = (int(n) * _PAGE_SIZE for n in file.read().split()[:2])
    return virtual, resident


def process() -> dict[str, float]:
    """Under prometheus_client's standard names."""
    virtual, resident = memory()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/stat", encoding="ascii") as file:
        start_ticks = int(file.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime", encoding="ascii") as file:
        uptime = float(file.read().split()[0])
    return {
        "process_resident_memory_bytes": resident,
        "process_virtual_memory_bytes": virtual,
        "process_cpu_seconds_total": usage.ru_utime + usage.ru_stime,
        "process_open_fds": len(os.listdir("/proc/self/fd")),
        "process_max_fds": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "process_start_time_seconds": time.time() - uptime + start_ticks / _TICKS,
    }
