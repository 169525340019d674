"""The daemon's log: JSON lines with their fields, one debug line per packet in and out
that never holds a payload or a password, and connection_messages = false."""

from __future__ import annotations

import json
from pathlib import Path

from mqlite.protocol import Connect, Publish

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess


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
