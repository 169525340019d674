"""``mqlite broker --workers N``: N broker processes listening on the same TCP ports
(SO_REUSEPORT: the kernel spreads the connections among them), each a node of one cluster, so
that one machine's cores are used. Without ``--cluster`` a local ``redis-server`` is started
on a unix socket in the state directory (the database's), with its append-only file there.

This process only supervises: it starts the workers, restarts one that dies, passes SIGHUP on,
and on SIGINT / SIGTERM stops them, then the Redis it started. The workers and that Redis
end with it, however it ends (each worker watches a pipe from it; Redis gets SIGTERM from
the kernel on Linux), and it refuses to start beside another set: it holds the database's
lock (handed down to the workers, so it stays taken while any of them lives), and checks
that the port and the Redis socket are free.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from mqlite.broker import StoreError
from mqlite.broker.cluster.config import default_node_id
from mqlite.broker.config.config_file import ConfigError
from mqlite.broker.storage.database_lock import lock_database

from .broker_settings import DaemonSettings, require_hiredis

log = logging.getLogger("mqlite.broker")

REDIS_SOCKET = "mqlite-redis.sock"
_NO_REDIS = ("--workers without --cluster starts a local redis-server, which is not installed "
             "(Debian: apt-get install redis-server); or give --cluster URL")
_RESTART_DELAY = 1.0  # seconds before a worker that died is started again
_STARTING = 5.0  # a worker failing this soon after its start failed to start: all stop


def worker_plan(args: argparse.Namespace, settings: DaemonSettings) -> tuple[int, int | None]:
    """The shared port of the default listener (None when the file declares listeners), and
    the http port of the first worker (None: no http listener); ConfigError if it cannot
    work with several processes."""
    broker = settings.broker
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: at least 1")
    listeners = broker.effective_listeners()
    if any(listener.type == "unix" for listener in listeners):
        raise ConfigError("--workers: a unix socket listener cannot be shared by several "
                          "processes; use TCP listeners")
    if broker.bridges:
        raise ConfigError("--workers: bridges would run once per worker; run them in a "
                          "broker of their own")
    if broker.listeners and any(listener.port == 0 for listener in listeners
                                if listener.type != "unix"):
        raise ConfigError("--workers: the configuration file's listeners need fixed ports")
    if broker.cluster is None and shutil.which("redis-server") is None:
        raise ConfigError(_NO_REDIS)
    require_hiredis()
    port = None if broker.listeners else (broker.port or _free_port(broker.host))
    http_port = None
    if broker.http:
        text = broker.http.rsplit(":", 1)[-1]
        http_port = int(text) if text.isdigit() else 0
    return port if port is not None else 0, http_port


def _free_port(host: str) -> int:
    """A port for all workers to share when asked for port 0 (each would pick its own)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _without_workers(argv: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return kept


def _check_port_free(host: str, port: int) -> None:
    """Workers listen with SO_REUSEPORT, so they would share the port with another set of
    workers (two clusters, each with some of the clients): a plain bind finds it taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use (another mqlite broker "
                                  f"--workers, or another server); stop it first or choose "
                                  f"--port") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") \
                from None


def _hold_database(db: str) -> TextIO | None:
    """The database's lock, for this supervisor and every process it starts."""
    if db == ":memory:":
        return None
    try:
        return lock_database(db)
    except StoreError as exc:
        raise ConfigError(f"{exc} (or its workers); stop it first") from None


def _die_with_parent() -> None:
    """In a child before it runs: SIGTERM when this process ends, however (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing, and the Redis socket check below still holds)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


class _LocalRedis:
    """``redis-server`` on a unix socket only, its data in the state directory."""

    def __init__(self, directory: Path, sync: str, persistent: bool) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError(_NO_REDIS)
        self.socket = str(directory / REDIS_SOCKET)
        self.url = f"unix://{self.socket}"
        if self._answers():
            raise ConfigError(f"a redis-server already answers on {self.socket} (another "
                              f"mqlite broker --workers on this database's directory); stop "
                              f"it first")
        persistence = (["--appendonly", "yes", "--appenddirname", "mqlite-redis-aof",
                        "--appendfsync", "always" if sync == "full" else "everysec"]
                       if persistent else ["--appendonly", "no"])
        old_mask = os.umask(0o077)  # its files and socket: this user's only
        try:
            self.process = subprocess.Popen(
                [binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "600",
                 "--dir", str(directory), "--save", "", *persistence,
                 "--logfile", str(directory / "mqlite-redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
        finally:
            os.umask(old_mask)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the local redis-server did not start; see "
                                  f"{directory / 'mqlite-redis.log'}")
            threading.Event().wait(0.02)  # a new process's socket: nothing to wait on

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(1.0)
                probe.connect(self.socket)
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # it finishes its AOF writes
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def run_workers(args: argparse.Namespace, settings: DaemonSettings,
                plan: tuple[int, int | None]) -> int:
    """``plan``: what worker_plan() gave."""
    port, http_port = plan
    db = settings.db
    directory = Path(db).resolve().parent if db != ":memory:" else Path.cwd()
    lock = _hold_database(db)
    for listener in settings.broker.effective_listeners():
        if listener.type != "unix":
            _check_port_free(listener.host, listener.port or port)
    redis: _LocalRedis | None = None
    cluster = settings.broker.cluster
    if cluster is None:
        redis = _LocalRedis(directory, settings.sync, persistent=db != ":memory:")
        url = redis.url
        log.info("workers: started redis-server on %s", redis.socket)
    else:
        url = cluster.url
    base_id = (cluster.node_id if cluster is not None and cluster.node_id
               else args.node_id or default_node_id(port))
    common = [sys.executable, "-m", "mqlite.cli", *_without_workers(args.argv),
              "--reuse-port", "--cluster", url]
    if port:
        common += ["--port", str(port)]

    def command(number: int) -> list[str]:
        extra = ["--node-id", f"{base_id}-w{number}",
                 "--db", db if db == ":memory:" else _worker_db(db, number)]
        if http_port:  # each worker's own http port, counting up from the one given
            http = settings.broker.http or ""
            host = http.rsplit(":", 1)[0] if ":" in http else "127.0.0.1"
            extra += ["--http", f"{host}:{http_port + number - 1}"]
        return [*common, *extra]

    supervisor = _Supervisor([command(number) for number in range(1, args.workers + 1)],
                             [lock.fileno()] if lock is not None else [])
    try:
        return supervisor.run()
    finally:
        if redis is not None:
            redis.stop()
        if lock is not None:
            lock.close()


def _worker_db(db: str, number: int) -> str:
    path = Path(db)
    return str(path.with_name(f"{path.stem}-w{number}{path.suffix or '.db'}"))


class _Supervisor:
    def __init__(self, commands: list[list[str]], inherited: list[int]) -> None:
        """``inherited``: descriptors every worker keeps (the database's lock)."""
        self.commands = commands
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * len(commands)
        self.stopping = False
        self._wake = threading.Event()
        # The workers hold the read end; when this process ends, however, they read EOF.
        self._lifeline_read, self._lifeline_write = os.pipe()
        self._inherited = [self._lifeline_read, *inherited]

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGHUP, self._pass_on)
        started = [0.0] * len(self.commands)
        for index in range(len(self.commands)):
            self._start(index)
            started[index] = time.monotonic()
        while not self.stopping:
            for index, process in enumerate(self.processes):
                if process is None or process.poll() is None or self.stopping:
                    continue
                if process.returncode and time.monotonic() - started[index] < _STARTING:
                    log.error("workers: worker %d failed to start (exit code %d); stopping",
                              index + 1, process.returncode)
                    self._stop(signal.SIGTERM, None)
                    self._wait_all()
                    return 1
                log.error("workers: worker %d (pid %d) exited with %s; starting it again",
                          index + 1, process.pid, process.returncode)
                self._wake.wait(_RESTART_DELAY)
                if not self.stopping:
                    self._start(index)
                    started[index] = time.monotonic()
            self._wake.wait(0.5)  # a supervisor's look at its children
        self._wait_all()
        return 0

    def _wait_all(self) -> None:
        for process in self.processes:
            if process is None:
                continue
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _start(self, index: int) -> None:
        process = subprocess.Popen(
            [*self.commands[index], "--supervisor-fd", str(self._lifeline_read)],
            stdin=subprocess.DEVNULL, pass_fds=self._inherited)
        self.processes[index] = process
        log.info("workers: worker %d started (pid %d)", index + 1, process.pid)

    def _signal_all(self, signum: int) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.send_signal(signum)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._signal_all(signal.SIGTERM)
        self._wake.set()

    def _pass_on(self, signum: int, frame: FrameType | None) -> None:
        self._signal_all(signal.SIGHUP)
