"""The daemon's log: JSON lines with their fields, one debug line per packet in and out
that never holds a payload or a password, and connection_messages = false."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from mqlite.protocol import Connect, Publish

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess
from ..interop.mosquitto import free_port, wait_listening


def start(tmp_path: Path, extra: str) -> BrokerProcess:
    config = tmp_path / "log.toml"
    config.write_text(f"sys_interval = 0\n{extra}\n[[listeners]]\nport = 0\n")
    return BrokerProcess("-c", str(config))


def test_json_lines_and_packet_lines_without_payloads_or_passwords(tmp_path: Path) -> None:
    with start(tmp_path, 'log_format = "json"\nlog_level = "debug"') as broker:
        client = RawClient(broker.address)
        client.send(Connect(client_id="logged", username="bob", password=b"hunter2"))
        client.receive()
        client.send(Publish(topic="a/b", payload=b"the secret payload", qos=1, packet_id=7))
        client.receive()
        broker.wait_for_log("out PUBACK id=7")
        client.close()
        broker.wait_for_log("client logged disconnected")
        broker.terminate()
    entries = [json.loads(line) for line in broker.log if line.startswith("{")]
    assert len(entries) == len([line for line in broker.log if line.strip()]), "all JSON"
    connected = next(e for e in entries if e.get("event") == "connect")
    assert connected["client_id"] == "logged" and connected["listener"].startswith("tcp:")
    assert connected["peer"].startswith("127.0.0.1:") and connected["level"] == "info"
    packets = [e["message"] for e in entries if e.get("event") in ("packet_in", "packet_out")]
    assert any(m.startswith("in  PUBLISH id=7 topic='a/b' qos=1 from logged") for m in packets)
    assert any(m.startswith("out CONNACK to logged") for m in packets)
    text = "".join(broker.log)
    assert "hunter2" not in text and "the secret payload" not in text


def test_connection_messages_false_leaves_out_connects_and_disconnects(tmp_path: Path) -> None:
    with start(tmp_path, "connection_messages = false") as broker:
        client = RawClient(broker.address)
        client.connect(client_id="quiet")
        client.close()
        refused = RawClient(broker.address)  # a refusal is still logged
        refused.send(Connect(client_id="", clean_start=False))
        refused.receive()
        broker.wait_for_log("refused: empty client id")
        broker.terminate()
    assert not any("quiet" in line for line in broker.log)


def test_mosquitto_log_dest_lines_add_up_file_and_stdout(tmp_path: Path) -> None:
    log_file = tmp_path / "broker.log"
    config = tmp_path / "m.conf"
    config.write_text(f"listener 0 127.0.0.1\nallow_anonymous true\nlog_dest file {log_file}\n"
                      "log_dest stdout\n")
    with BrokerProcess("-c", str(config)) as broker:  # reads "listening on" from stdout
        RawClient(broker.address).connect(client_id="both-ways", username="carol")
        # The connect line names the listener and the user.
        broker.wait_for_log(r"client both-ways connected from 127\.0\.0\.1:\d+ on tcp:\d+, "
                            r"user carol \(MQTT 3\.1\.1, new session")
        assert broker.terminate() == 0
    written = log_file.read_text()
    assert "listening on" in written and "client both-ways connected" in written
    assert oct(log_file.stat().st_mode & 0o777) == "0o600"


def test_log_dest_none_logs_nothing(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "m.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n"
                      "log_type all\n")
    proc = subprocess.Popen([sys.executable, "-m", "mqlite.cli", "broker", "-c", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)  # type: ignore[arg-type]
        RawClient(("127.0.0.1", port)).connect(client_id="silent")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == b"" and err == b"", (out, err)


def test_log_dest_topic_publishes_the_log_on_sys_broker_log(tmp_path: Path) -> None:
    with start(tmp_path, 'log_dest = "stdout,topic"') as broker:
        watcher = RawClient(broker.address)
        watcher.connect(client_id="log-watcher")
        watcher.subscribe("$SYS/broker/log/#")
        RawClient(broker.address).connect(client_id="seen-in-the-log")
        deadline = time.monotonic() + 10
        while True:
            packet = watcher.receive()
            if isinstance(packet, Publish) and b"seen-in-the-log connected" in packet.payload:
                break
            assert time.monotonic() < deadline
        assert packet.topic == "$SYS/broker/log/I" and not packet.retain
        broker.wait_for_log("client seen-in-the-log connected")  # and on stdout too
        assert broker.terminate() == 0
