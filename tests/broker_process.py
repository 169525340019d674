"""The broker as a separate process, started the way a user starts it."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from types import TracebackType

_LISTENING = re.compile(r"listening on (?:\[(?P<v6>[^\]]+)\]|(?P<v4>[^:\s]+)):(?P<port>\d+)")


class BrokerProcess:
    """``python -m mqlite.cli broker --port 0 ...``; reads the chosen port from its log."""

    def __init__(self, *args: str, timeout: float = 10.0) -> None:
        if "--db" not in args:
            args = (*args, "--db", ":memory:")  # no stray mqlite.db, no shared lock
        if "-c" not in args:  # a configuration file names its own listeners
            args = ("--port", "0", *args)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mqlite.cli", "broker", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.log: list[str] = []
        self._partial = ""
        line = self.wait_for_log(_LISTENING, timeout)
        match = _LISTENING.search(line)
        assert match is not None
        self.address = (match["v6"] or match["v4"], int(match["port"]))

    def wait_for_log(self, pattern: re.Pattern[str] | str, timeout: float = 10.0) -> str:
        """The first log line matching ``pattern``, waiting up to ``timeout`` seconds."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            for line in self.log:
                if regex.search(line):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no log line like {regex.pattern!r}:\n{''.join(self.log)}")
            # Raw reads: a buffered readline() would hide lines from select().
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"broker exited:\n{''.join(self.log)}")
                self._partial += chunk.decode(errors="replace")
                *lines, self._partial = self._partial.split("\n")
                self.log.extend(line + "\n" for line in lines)

    def discard_log(self) -> None:
        """Read (and drop) the log from now on, in a thread: a run that logs more than a pipe
        holds would otherwise stall the broker on its next log line."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()

        def drain() -> None:
            with contextlib.suppress(OSError):
                while os.read(fd, 65536):
                    pass

        threading.Thread(target=drain, daemon=True).start()

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def terminate(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        assert self.proc.stdout is not None
        rest = self._partial + self.proc.stdout.read().decode(errors="replace")
        self.log.extend(line + "\n" for line in rest.splitlines())
        return code

    def __enter__(self) -> BrokerProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
