"""The brokers under test, each started as a process pinned to one CPU."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
AMQTT_VERSION = "0.12.1"
AEDES_VERSION = "1.2.0"
BROKER_CPU = "0"
LOAD_CPU = "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (20_000, 20_000))


def amqtt_command(progress: bool = True) -> list[str]:
    """amqtt lives in its own venv (its dependencies are not ours), made on first use."""
    venv = Path(os.environ.get("MQLITE_BENCH_AMQTT_VENV", BENCH_DIR / ".amqtt-venv"))
    binary = venv / "bin" / "amqtt"
    if not binary.exists():
        if progress:
            print(f"installing amqtt {AMQTT_VERSION} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"amqtt=={AMQTT_VERSION}"],
                       check=True)
    return [str(binary)]


def aedes_command(port: int, progress: bool = True) -> list[str]:
    """Aedes runs on Node from its own folder (bench/.aedes, npm), made on first use."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise RuntimeError("Aedes needs node and npm (apt-get install nodejs npm)")
    folder = Path(os.environ.get("MQLITE_BENCH_AEDES_DIR", BENCH_DIR / ".aedes"))
    if not (folder / "node_modules" / "aedes").exists():
        if progress:
            print(f"installing aedes {AEDES_VERSION} into {folder} ...", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                        "--loglevel=error", f"aedes@{AEDES_VERSION}"], check=True)
    launcher = folder / "aedes_broker.mjs"  # beside its node_modules, so the import resolves
    shutil.copyfile(BENCH_DIR / "aedes_broker.mjs", launcher)
    return ["node", str(launcher), str(port)]


def baseline_python() -> str:
    """"mqlite-base": the interpreter of a venv with an earlier mqlite installed, to measure a
    change against the commit before it in the same run (MQLITE_BENCH_BASE_PYTHON)."""
    python = os.environ.get("MQLITE_BENCH_BASE_PYTHON")
    if not python:
        raise RuntimeError("mqlite-base needs MQLITE_BENCH_BASE_PYTHON: the python of a venv "
                           "where the earlier commit is installed (pip install <checkout>)")
    return python


RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def rabbitmq_launch(port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """RabbitMQ with its MQTT plugin, from Debian's rabbitmq-server: a node of its own in
    ``workdir`` (its database, cookie and config), anonymous MQTT on ``port``. Its MQTT
    plugin stores QoS 1 messages persistent in durable queues for persistent sessions and
    sends PUBACK after the queue confirms them: the durable peer for C and G."""
    if not RABBITMQ_SERVER.exists():
        raise RuntimeError("RabbitMQ is not installed (apt-get install rabbitmq-server)")
    (workdir / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {free_port()}\nmqtt.listeners.tcp.default = {port}\n"
        "mqtt.allow_anonymous = true\nloopback_users = none\nlog.console = false\n"
        "log.file = false\n")
    (workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
    environment = {
        **os.environ, "HOME": str(workdir), "RABBITMQ_NODENAME": f"bench{port}@localhost",
        "RABBITMQ_DIST_PORT": str(free_port()), "RABBITMQ_MNESIA_BASE": str(workdir / "db"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid")}
    return [str(RABBITMQ_SERVER)], environment


class BrokerProcess:
    def __init__(self, name: str, password_file: Path | None = None,
                 nodelay: bool = False) -> None:
        """``password_file``: a mosquitto-format file every client must authenticate against
        (mqlite and mosquitto read the same one). ``nodelay``: mosquitto too sets TCP_NODELAY
        (mqlite always does), for latency measured on few small messages."""
        self.name = name
        self.password_file = password_file
        self.nodelay = nodelay
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-{name}-")
        self._launch()

    def _launch(self) -> None:
        environment = None
        if self.name == "rabbitmq":
            command, environment = rabbitmq_launch(self.port, Path(self._dir.name))
        else:
            command = self._command(Path(self._dir.name))
        # A session of its own: RabbitMQ's start script runs the Erlang VM as its child, and
        # stopping the broker stops the whole group.
        self.proc = subprocess.Popen(["taskset", "-c", BROKER_CPU, *command],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, preexec_fn=_raise_fd_limit,
                                     cwd=self._dir.name, env=environment,
                                     start_new_session=True)
        self._wait_listening(timeout=90 if self.name == "rabbitmq" else 30)
        self.pid = self._measured_pid()

    def _measured_pid(self) -> int:
        """The process doing the broker's work: RabbitMQ's Erlang VM, the others' own."""
        if self.name != "rabbitmq":
            return self.proc.pid
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                name, rest = stat.read_text().rsplit(")", 1)
            except OSError:
                continue
            if name.endswith("(beam.smp") and int(rest.split()[1]) == self.proc.pid:
                return int(stat.parent.name)
        raise RuntimeError("RabbitMQ's Erlang VM is not running")

    def kill_and_restart(self) -> None:
        """SIGKILL, then start again on the same files (and port)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._launch()

    def _command(self, workdir: Path) -> list[str]:
        if self.name in ("mqlite", "mqlite-normal", "mqlite-base"):
            sync = "normal" if self.name == "mqlite-normal" else "full"
            command = [baseline_python() if self.name == "mqlite-base" else sys.executable,
                       "-m", "mqlite.cli", "broker", "--port", str(self.port),
                       "--log-level", "warning", "--db", str(workdir / "mqlite.db"),
                       "--sync", sync, "--max-queued-messages", "1000000",
                       "--max-queued-bytes", str(1 << 30)]
            if self.password_file is not None:
                command += ["--password-file", str(self.password_file)]
            return command
        if self.name == "mosquitto":
            if not shutil.which("mosquitto"):
                raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
            conf = workdir / "mosquitto.conf"
            authentication = "allow_anonymous true\n"
            if self.password_file is not None:
                authentication = f"allow_anonymous false\npassword_file {self.password_file}\n"
                if os.geteuid() == 0:  # else it drops to user mosquitto, who cannot read it
                    authentication += "user root\n"
            if self.nodelay:
                authentication += "set_tcp_nodelay true\n"
            conf.write_text(f"listener {self.port} 127.0.0.1\n{authentication}"
                            "persistence false\nlog_dest none\nmax_queued_messages 1000000\n")
            os.chmod(workdir, 0o755)
            return ["mosquitto", "-c", str(conf)]
        if self.name == "aedes":
            if self.password_file is not None:
                raise ValueError("Aedes does not read mosquitto's password file format")
            return aedes_command(self.port)
        if self.name == "amqtt":
            if self.password_file is not None:
                raise ValueError("amqtt does not read mosquitto's password file format")
            conf = workdir / "amqtt.yaml"
            conf.write_text(
                "listeners:\n  default:\n    type: tcp\n"
                f"    bind: 127.0.0.1:{self.port}\n"
                "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                "    allow_anonymous: true\n")
            return [*amqtt_command(), "-c", str(conf)]
        raise ValueError(f"unknown broker {self.name!r}")

    def _wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)  # polling a starting process: nothing to wait on
        raise RuntimeError(f"{self.name} did not start listening in {timeout}s")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # the group's stragglers
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._dir.cleanup()
