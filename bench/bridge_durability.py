"""Does a bridge lose what its broker acknowledged? An edge broker (mqlite, or mosquitto for
comparison) bridges ``data/#`` out at QoS 1 to a central mosquitto; a publisher sends numbered
QoS 1 messages to the edge, sending again whatever was not acknowledged when the edge went
away; the edge is killed with SIGKILL at random moments and restarted, and the central broker
is away once, from just before one kill until just after the next. Then: did every message
the edge acknowledged reach the subscriber on the central broker?

    python -m bench.bridge_durability [--edge mqlite|mosquitto] [--messages 10000] [--kills 5]
                                      [--qos 1|2] [--seed N]

At QoS 2 the publisher has a persistent session with the edge and leaves resending to it: its
client sends its unfinished flows again, with their ids, on each reconnect, so every message
must arrive exactly once. That publisher is mqlite's client, not paho: paho-mqtt 2.x resets an
owed PUBREL to "resend PUBREL" when a connection drops and, if the next connect fails too (an
edge still restarting), resets that to a PUBLISH with DUP clear, which the edge, having released
the id, must take for a new message (``_messages_reconnect_reset_out``). With paho publishing,
about one message in 10,000 arrived twice here, each traced to such a PUBLISH.

The edge mosquitto runs as Debian packages it: ``persistence true``, its default autosave
interval (its in-memory state is written every 30 minutes and at a clean stop).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

import mqlite.client

WINDOW = 20  # QoS 1 messages the publisher has in flight at once
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            time.sleep(0.02)  # a process's listening socket: nothing to wait on but a poll


def _as_root() -> str:
    # Started as root, mosquitto switches to its own user, which cannot write a temp dir.
    return "user root\n" if os.geteuid() == 0 else ""


class Central:
    """The remote broker: mosquitto with persistence, so that its one restart keeps the
    subscriber's session and what is queued for it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.config = directory / "central.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                               f"persistence true\npersistence_location {directory}/\n"
                               f"max_queued_messages 0\n{_as_root()}")
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(["mosquitto", "-c", str(self.config)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, process)
        return process

    def start(self) -> None:
        self.process = self._start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class Edge:
    """The broker under test, restartable on the same port and files."""

    def __init__(self, kind: str, directory: Path, central_port: int, qos: int) -> None:
        self.kind = kind
        self.port = free_port()
        bridge = f"127.0.0.1:{central_port}"
        if kind == "mqlite":
            config = directory / "edge.toml"
            config.write_text(
                f'db = "{directory / "edge.db"}"\nlog_level = "warning"\n'
                f"[[listeners]]\nport = {self.port}\n"
                f'[[bridges]]\nname = "edge"\naddress = "{bridge}"\nclient_id = "edge"\n'
                f"restart_timeout = [0.1, 1]\n"
                f'topics = [{{ pattern = "data/#", direction = "out", qos = {qos} }}]\n')
            self.command = [sys.executable, "-m", "mqlite.cli", "broker", "-c", str(config)]
        else:
            config = directory / "edge.conf"
            config.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                f"persistence_location {directory}/\nmax_queued_messages 0\n{_as_root()}"
                f"connection edge\naddress {bridge}\nremote_clientid edge\n"
                f"cleansession false\nrestart_timeout 1\ntopic data/# out {qos}\n")
            self.command = ["mosquitto", "-c", str(config)]
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        wait_listening(self.port, process)
        return process

    def kill_and_restart(self) -> None:
        self.process.kill()
        self.process.wait(30)
        self.process = self._start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class Publisher:
    """Numbered messages to the edge, WINDOW at a time. QoS 1: what is not acknowledged when
    the connection drops is published again after it is back. QoS 2: a persistent session,
    whose unfinished flows paho itself sends again."""

    def __init__(self, port: int, count: int, qos: int) -> None:
        self.count = count
        self.qos = qos
        self.acked: set[int] = set()
        self.lock = threading.Condition()
        self._in_flight: dict[int, int] = {}  # mid -> number
        self._next = 0
        self._retry: list[int] = []
        if qos == 1:
            self.client: Any = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                           client_id="publisher")
        else:
            self.client = mqlite.client.Client(mqlite.client.CallbackAPIVersion.VERSION2,
                                               client_id="publisher", clean_session=False)
        self.client.max_inflight_messages_set(WINDOW)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, *_: Any) -> None:
        with self.lock:
            self._fill()

    def _on_disconnect(self, *_: Any) -> None:
        if self.qos == 2:
            return  # paho keeps the flows and sends them again
        with self.lock:
            self._retry.extend(self._in_flight.values())
            self._in_flight.clear()

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, reason: Any,
                    _properties: Any) -> None:
        with self.lock:
            number = self._in_flight.pop(mid, None)
            if number is not None and not reason.is_failure:
                self.acked.add(number)
            elif number is not None:
                self._retry.append(number)
            self._fill()
            self.lock.notify_all()

    def _fill(self) -> None:
        while len(self._in_flight) < WINDOW and (self.client.is_connected() or self.qos == 2):
            if self._retry:
                number = self._retry.pop()
            elif self._next < self.count:
                number, self._next = self._next, self._next + 1
            else:
                return
            info = self.client.publish("data/n", str(number).encode(), qos=self.qos)
            self._in_flight[info.mid] = number

    def wait_acked(self, at_least: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.acked) < at_least:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"{len(self.acked)} of {at_least} acknowledged")
                self.lock.wait(min(remaining, 0.5))
                self._fill()  # after a reconnect on_connect refilled; this is a backstop

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Subscriber:
    """On the central broker: a persistent session, every payload it gets. mqlite's client:
    it delivers a QoS 2 message at PUBREL, once, however often the PUBLISH comes (paho
    delivers at PUBLISH and forgets across a reconnect, so the central broker's restart
    would show as a duplicate of the subscriber's own)."""

    def __init__(self, port: int, qos: int) -> None:
        self.received: list[int] = []
        self.lock = threading.Condition()
        self.client = mqlite.client.Client(mqlite.client.CallbackAPIVersion.VERSION2,
                                           client_id="subscriber", clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe("data/#", qos)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self.lock:
            self.received.append(int(message.payload))
            self.lock.notify_all()

    def wait_for(self, wanted: set[int], quiet: float) -> set[int]:
        """What arrived of ``wanted``: once all of it, or after ``quiet`` seconds without a
        new message."""
        with self.lock:
            while not wanted <= set(self.received):
                before = len(self.received)
                self.lock.wait(quiet)
                if len(self.received) == before:
                    break
            return wanted & set(self.received)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run(edge_kind: str, messages: int = 10_000, kills: int = 5, seed: int | None = None,
        qos: int = 1, central_away: bool = True) -> dict[str, Any]:
    """The whole test; its numbers."""
    chance = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bridge-durability-") as name:
        directory = Path(name)
        (directory / "central").mkdir()
        (directory / "edge").mkdir()
        central = Central(directory / "central")
        subscriber = Subscriber(central.port, qos)
        edge = Edge(edge_kind, directory / "edge", central.port, qos)
        publisher = Publisher(edge.port, messages, qos)
        started = time.monotonic()
        try:
            moments = sorted(chance.randrange(1, messages) for _ in range(kills))
            # The central broker is away from just before one kill until just after the next:
            # what the edge acknowledges meanwhile waits in it when the second kill comes.
            away = chance.randrange(max(1, kills - 1)) if central_away else -2
            for index, moment in enumerate(moments):
                publisher.wait_acked(moment, timeout=120)
                if index == away:
                    central.stop()
                edge.kill_and_restart()
                if index == away + 1 or (index == away and index == kills - 1):
                    central.start()
            publisher.wait_acked(messages, timeout=300)
            acked = set(publisher.acked)
            arrived = subscriber.wait_for(acked, quiet=15.0)
            duplicates = len(subscriber.received) - len(set(subscriber.received))
            repeated = sorted({n for n in subscriber.received
                               if subscriber.received.count(n) > 1})[:10] if duplicates else []
        finally:
            publisher.stop()
            subscriber.stop()
            edge.stop()
            central.stop()
    return {"edge": edge_kind, "qos": qos, "messages": messages, "kills": kills,
            "acknowledged": len(acked), "arrived": len(arrived),
            "lost": len(acked - arrived), "duplicates": duplicates, "repeated": repeated,
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edge", choices=["mqlite", "mosquitto"], default="mqlite")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--qos", type=int, choices=[1, 2], default=1)
    parser.add_argument("--central-stays", action="store_true",
                        help="never stop the central broker (only the edge is killed)")
    options = parser.parse_args()
    print(json.dumps(run(options.edge, options.messages, options.kills, options.seed,
                         options.qos, not options.central_stays)))


if __name__ == "__main__":
    main()
