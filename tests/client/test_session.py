"""The client's sans-IO session, driven with bytes and times only (no socket, no thread): what
it writes, the events it reports, and the flow table it shares with the broker."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mqlite.client import MQTT_ERR_SUCCESS, MQTTv5, MQTTv311
from mqlite.client.constants import MQTTErrorCode
from mqlite.client.events import (
    Connected,
    ConnectionEnds,
    Event,
    MessageReceived,
    ProtocolViolated,
    PublishCompleted,
)
from mqlite.client.outbox import Outbox
from mqlite.client.session import ClientSession
from mqlite.client.settings import ClientSettings
from mqlite.protocol import (
    EMPTY_PROPERTIES,
    Connack,
    Connect,
    Packet,
    PacketReader,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    encode,
)
from mqlite.protocol.qos_flow import FlowState


class Peer:
    """The broker's side of the bytes: what the session wrote, and packets to feed it."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.reader = PacketReader("server")

    def written(self, session: ClientSession) -> list[Packet]:
        data = bytes(session.out)
        session.written(len(data))
        return list(self.reader.feed(data))

    def feed(self, session: ClientSession, *packets: Packet, now: float = 0.0) -> list[Event]:
        data = b"".join(encode(packet, self.version) for packet in packets)
        return session.receive_data(memoryview(data), now)


def connected(version: int = MQTTv311, keepalive: int = 60) -> tuple[ClientSession, Peer]:
    settings = ClientSettings(None, False)
    settings.keepalive = keepalive
    logged: list[Any] = []
    session = ClientSession(settings, "sans-io", version, True, None,
                            lambda *args: logged.append(args))
    peer = Peer(version)
    session.open(now=0.0)
    [connect] = peer.written(session)
    assert isinstance(connect, Connect) and connect.client_id == "sans-io"
    events = peer.feed(session, Connack())
    assert isinstance(events[0], Connected) and events[0].accepted
    session.resume()
    return session, peer


def test_a_qos2_publish_goes_through_its_flow() -> None:
    session, peer = connected()
    info = session.publish("t", b"x", 2, False, EMPTY_PROPERTIES)
    [publish] = peer.written(session)
    assert isinstance(publish, Publish) and publish.qos == 2 and publish.packet_id
    assert peer.feed(session, Pubrec(packet_id=publish.packet_id)) == []
    assert peer.written(session) == [Pubrel(packet_id=publish.packet_id)]
    [done] = peer.feed(session, Pubcomp(packet_id=publish.packet_id))
    assert isinstance(done, PublishCompleted) and done.info is info
    assert publish.packet_id not in session.ids, "the packet id is free again"


def test_an_acknowledgement_of_the_wrong_kind_is_a_protocol_violation() -> None:
    """The same table as the broker's [MQTT-4.8.0-1]: PUBACK for a QoS 2 message."""
    session, peer = connected()
    session.publish("t", b"x", 2, False, EMPTY_PROPERTIES)
    [publish] = peer.written(session)
    assert isinstance(publish, Publish) and publish.packet_id is not None
    [violation] = peer.feed(session, Puback(packet_id=publish.packet_id))
    assert isinstance(violation, ProtocolViolated)
    assert "PUBACK for packet id" in str(violation.error)


@pytest.mark.parametrize("version", [MQTTv311, MQTTv5])
def test_a_pubrec_for_no_flow_is_answered_with_pubrel(version: int) -> None:
    session, peer = connected(version)
    assert peer.feed(session, Pubrec(packet_id=77)) == []
    [pubrel] = peer.written(session)
    assert isinstance(pubrel, Pubrel) and pubrel.packet_id == 77
    assert pubrel.reason_code == (0x92 if version == MQTTv5 else 0)


def test_an_inbound_qos2_message_is_delivered_once_at_pubrel() -> None:
    session, peer = connected()
    message = Publish(topic="in", payload=b"once", qos=2, packet_id=9)
    assert peer.feed(session, message, message) == []  # the resend is not a second message
    assert peer.written(session) == [Pubrec(packet_id=9), Pubrec(packet_id=9)]
    [received] = peer.feed(session, Pubrel(packet_id=9))
    assert isinstance(received, MessageReceived) and received.ack_qos == 2
    assert received.message.payload == b"once"
    session.acknowledge(9, 2)
    assert peer.written(session) == [Pubcomp(packet_id=9)]


def test_keepalive_is_driven_by_the_time_given() -> None:
    session, peer = connected(keepalive=10)
    assert session.tick(9.0) == []
    assert session.tick(10.0) == []
    assert peer.written(session) == [Pingreq()]
    [ends] = session.tick(20.0)  # no PINGRESP within the keep alive
    assert isinstance(ends, ConnectionEnds) and ends.rc == MQTTErrorCode.MQTT_ERR_KEEPALIVE


def test_written_qos0_messages_complete_and_a_written_disconnect_ends() -> None:
    session, peer = connected()
    info = session.publish("t", b"0", 0, False, EMPTY_PROPERTIES)
    session.disconnect(0, EMPTY_PROPERTIES)
    peer.written(session)
    done, ends = session.write_done(now=1.0)
    assert isinstance(done, PublishCompleted) and done.info is info
    assert isinstance(ends, ConnectionEnds) and ends.rc == MQTT_ERR_SUCCESS


def test_an_outbox_of_schema_1_is_migrated_to_the_shared_flow_states(tmp_path: Path) -> None:
    """Version 1 had its own numbers (1: PUBLISH sent, either QoS; 2: PUBREC received)."""
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE outbox (client_id TEXT NOT NULL, seq INTEGER NOT NULL, mid INTEGER NOT NULL,
            packet_id INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
            qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties BLOB,
            state INTEGER NOT NULL, PRIMARY KEY (client_id, seq));
        INSERT INTO outbox VALUES ('c', 1, 1, 0, 't', x'00', 1, 0, NULL, 0);
        INSERT INTO outbox VALUES ('c', 2, 2, 5, 't', x'00', 1, 0, NULL, 1);
        INSERT INTO outbox VALUES ('c', 3, 3, 6, 't', x'00', 2, 0, NULL, 1);
        INSERT INTO outbox VALUES ('c', 4, 4, 7, 't', x'00', 2, 0, NULL, 2);
    """)
    db.commit()
    db.close()
    outbox = Outbox(str(path), "c")
    states = [stored.state for stored in outbox.load()]
    outbox.close()
    assert states == [FlowState.QUEUED, FlowState.AWAIT_PUBACK, FlowState.AWAIT_PUBREC,
                      FlowState.AWAIT_PUBCOMP]
    again = Outbox(str(path), "c")  # migrated once: opening again changes nothing
    assert [stored.state for stored in again.load()] == states
    again.close()


def reconnect(session: ClientSession, peer: Peer, session_present: bool) -> list[Event]:
    session.open(now=1.0)
    peer.reader = PacketReader("server")  # a new connection
    [connect] = peer.written(session)
    assert isinstance(connect, Connect)
    return peer.feed(session, Connack(session_present=session_present), now=1.0)


@pytest.mark.parametrize("version", [MQTTv311, MQTTv5])
def test_a_qos2_message_held_for_pubrel_survives_a_reconnect(version: int) -> None:
    """The connection drops after our PUBREC; the resumed session's broker sends only PUBREL
    for it (never the PUBLISH again), so the message must still be here to deliver then."""
    session, peer = connected(version)
    assert peer.feed(session, Publish(topic="in", payload=b"held", qos=2, packet_id=4)) == []
    assert peer.written(session) == [Pubrec(packet_id=4)]
    assert [type(e) for e in reconnect(session, peer, session_present=True)] == [Connected]
    session.resume()
    [received] = peer.feed(session, Pubrel(packet_id=4), now=1.0)
    assert isinstance(received, MessageReceived) and received.message.payload == b"held"


def test_a_qos2_message_held_for_pubrel_is_delivered_when_the_session_is_gone() -> None:
    """No session on the broker: no PUBREL will ever come, and the broker handed the message
    over when it got our PUBREC, so it is delivered rather than lost (and once)."""
    session, peer = connected()
    assert peer.feed(session, Publish(topic="in", payload=b"held", qos=2, packet_id=4)) == []
    assert peer.written(session) == [Pubrec(packet_id=4)]
    events = reconnect(session, peer, session_present=False)
    [received] = [e for e in events if isinstance(e, MessageReceived)]
    assert received.message.payload == b"held" and received.ack_qos == 0
    session.resume()
    assert peer.feed(session, Pubrel(packet_id=4), now=1.0) == []
    assert peer.written(session) == [Pubcomp(packet_id=4)]
