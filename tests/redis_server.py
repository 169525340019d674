"""A real ``redis-server`` for tests: on a unix socket in a temp dir, with AOF, stopped by
PID (the cluster tests and the Redis session store's conformance run)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import hiredis
import pytest


class RedisServer:
    """``redis-server`` with AOF (appendfsync always), on a unix socket (and ``port`` on the
    loopback if given: a replica connects over TCP)."""

    def __init__(self, directory: Path, port: int = 0, *options: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = port
        self.options = options
        self.socket = str(directory / "redis.sock")
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (Debian: apt-get install redis-server)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--unixsocket", self.socket, "--unixsocketperm", "600",
             "--dir", str(self.directory), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--logfile", str(self.directory / "redis.log"),
             *self.options],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise AssertionError(f"redis-server did not start:\n{log}")
            time.sleep(0.01)  # polling a fresh process's socket: nothing to wait on

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1.0)
                sock.connect(self.socket)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def call(self, *args: str | bytes | int) -> Any:
        """One command and its reply (binary-safe), over the unix socket."""
        reader = hiredis.Reader()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(self.socket)
            sock.sendall(hiredis.pack_command(args))
            while (reply := reader.gets()) is False:
                reader.feed(sock.recv(65536))
        return reply

    def stop(self) -> None:
        """SIGTERM: Redis finishes its AOF writes and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
