"""The durable outbox: a message publish() accepted survives kill -9 of the client process and
is sent by the next process with the same client id; QoS 2 stays exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from mqlite.broker import Broker
from mqlite.protocol.qos_flow import FlowState
from tests.broker.helpers import PahoClient

CHILD = Path(__file__).with_name("outbox_child.py")
TIMEOUT = 20


def start_child(outbox: Path, broker: Broker, mode: str, count: int) -> subprocess.Popen[str]:
    host, port = broker.address
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(outbox), host, str(port), mode, str(count)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def expect_line(child: subprocess.Popen[str], text: str) -> str:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line.startswith(text), (line, child.stderr.read() if child.poll() is not None else "")
    return line


def kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(TIMEOUT)
    assert child.returncode == -signal.SIGKILL


def resume(outbox: Path, broker: Broker, expected: int) -> None:
    child = start_child(outbox, broker, "resume", 0)
    assert expect_line(child, "restored") == f"restored {expected}"
    expect_line(child, "done")
    assert child.wait(TIMEOUT) == 0


def subscriber(broker: Broker, client_id: str) -> PahoClient:
    peer = PahoClient(broker.address, client_id)
    peer.connect()
    peer.subscribe("outbox/t", 2)
    return peer


def test_messages_accepted_offline_survive_kill_9(broker: Broker, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    peer = subscriber(broker, "outbox-peer")
    child = start_child(outbox, broker, "offline", 50)
    expect_line(child, "accepted")
    kill(child)
    assert oct(outbox.stat().st_mode & 0o777) == "0o600"
    resume(outbox, broker, 50)
    payloads = [peer.message().payload for _ in range(50)]
    assert sorted(payloads, key=int) == [b"%d" % i for i in range(50)]
    peer.no_message()
    with sqlite3.connect(outbox) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    peer.stop()


def test_in_flight_qos2_resumed_by_the_next_process_is_delivered_exactly_once(
    broker: Broker, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    peer = subscriber(broker, "outbox-peer2")
    child = start_child(outbox, broker, "inflight", 30)
    expect_line(child, "sent")
    # The broker has the first 10 (they reach the subscriber); the child never saw PUBREC.
    first = sorted(int(peer.message().payload) for _ in range(10))
    assert first == list(range(10))
    kill(child)
    with sqlite3.connect(outbox) as db:
        states = dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    # 20 never sent, 10 QoS 2 PUBLISH sent (awaiting PUBREC).
    assert states == {FlowState.QUEUED: 20, FlowState.AWAIT_PUBREC: 10}
    resume(outbox, broker, 30)
    rest = sorted(int(peer.message().payload) for _ in range(20))
    assert rest == list(range(10, 30))
    peer.no_message(within=0.5)  # the 10 resent with DUP were not delivered twice
    peer.stop()


def test_resent_publish_carries_dup_when_the_session_is_present(tmp_path: Path) -> None:
    """Seen from a raw MQTT server socket: a message the dead process had sent is resent with
    DUP=1 and its id, whether the broker says the session is present or not (a re-delivery
    attempt either way, MQTT-3.3.1-1, as paho sends it)."""
    import socket

    import mqlite.client as mqtt
    from mqlite.protocol import Connack, PacketReader, Publish, encode

    outbox = tmp_path / "outbox.db"
    first = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                        client_id="dup-check", clean_session=False, persistence=str(outbox))
    first.publish("dup/t", b"x", qos=1)
    session = first._session  # the sans-IO session, as if it had written the PUBLISH
    sent = session.outgoing.next_to_send(window=10)
    assert sent is not None and sent.packet_id
    session.outgoing.mark_sent(sent)
    session.outbox.commit()  # type: ignore[union-attr]

    for session_present, expected_dup in ((True, True), (False, True)):
        with socket.create_server(("127.0.0.1", 0)) as server:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                 client_id="dup-check", clean_session=False,
                                 persistence=str(outbox))
            client.connect(*server.getsockname())
            peer, _ = server.accept()
            peer.settimeout(TIMEOUT)
            reader = PacketReader("server")
            client.loop_write()
            packets = list(reader.feed(peer.recv(65536)))
            peer.sendall(encode(Connack(session_present=session_present), 4))
            while not any(isinstance(p, Publish) for p in packets):
                client.loop_read()
                client.loop_write()
                packets += list(reader.feed(peer.recv(65536)))
            publish = next(p for p in packets if isinstance(p, Publish))
            assert (publish.dup, publish.packet_id) == (expected_dup, sent.packet_id)
            client._close(mqtt.MQTT_ERR_SUCCESS, None)
            peer.close()
