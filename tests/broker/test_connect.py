"""CONNECT and CONNACK (spec checklist A2, A3, B 66-71, 82, 86)."""

from __future__ import annotations

from mqlite.broker import Broker
from mqlite.protocol import (
    Connack,
    Connect,
    Disconnect,
    Properties,
    Publish,
    ReasonCode,
    Will,
)

from ..conftest import BrokerFactory
from .helpers import PahoClient, RawClient, wait_until


def test_unknown_protocol_level_gets_return_code_1(broker: Broker) -> None:
    raw = RawClient(broker.address)
    raw.send_bytes(bytes.fromhex("100d00044d5154540602003c000163"))  # level 6
    assert raw.expect_closed() == [Connack(reason_code=1)]


def test_mqtt_3_1_3_6_empty_client_id_v311_clean_is_assigned(broker: Broker) -> None:
    raw = RawClient(broker.address)
    assert raw.connect(client_id="", clean_start=True) == Connack()
    raw.ping()


def test_mqtt_3_1_3_8_empty_client_id_v311_persistent_refused(broker: Broker) -> None:
    raw = RawClient(broker.address)
    raw.send_bytes(bytes.fromhex("100c00044d5154540400003c0000"))  # robustness B5 7(b)
    assert raw.expect_closed() == [Connack(reason_code=2)]


def test_mqtt_3_2_2_16_v5_assigned_client_identifier(broker: Broker) -> None:
    client = PahoClient(broker.address, client_id="", version=5, clean=False)
    _, rc, properties = client.connect(session_expiry=60)
    assert rc == 0
    assigned = properties.AssignedClientIdentifier
    assert assigned.startswith("mqlite-")
    assert assigned in broker.core.sessions
    client.disconnect()


def test_v5_connack_advertises_limits(make_broker: BrokerFactory) -> None:
    broker = make_broker(max_packet_size=4096, receive_maximum=7, topic_alias_maximum=3)
    raw = RawClient(broker.address, version=5)
    connack = raw.connect()
    assert connack.properties.maximum_packet_size == 4096
    assert connack.properties.receive_maximum == 7
    assert connack.properties.topic_alias_maximum == 3


def test_mqtt_3_1_0_2_second_connect_closes(broker: Broker, version: int) -> None:
    raw = RawClient(broker.address, version=version)
    raw.connect()
    raw.send(Connect(client_id="again", protocol_version=version))
    packets = raw.expect_closed()
    assert packets == ([Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)] if version == 5
                       else [])


def test_mqtt_3_1_4_5_nothing_after_a_refused_connect_is_processed(broker: Broker) -> None:
    watcher = PahoClient(broker.address)
    watcher.connect()
    watcher.subscribe("#")
    raw = RawClient(broker.address)
    raw.send_bytes(bytes.fromhex("100c00044d5154540400003c0000")
                   + bytes.fromhex("3007000161") + b"x")  # refused CONNECT, then a PUBLISH
    assert raw.expect_closed() == [Connack(reason_code=2)]
    watcher.no_message()


def test_packets_pipelined_behind_connect_are_processed(broker: Broker, version: int) -> None:
    """Spec checklist 17: a client may publish before it has the CONNACK."""
    watcher = PahoClient(broker.address)
    watcher.connect()
    watcher.subscribe("pipe/#")
    raw = RawClient(broker.address, version=version)
    from mqlite.protocol import encode
    raw.send_bytes(encode(Connect(client_id="p", protocol_version=version), version)
                   + encode(Publish(topic="pipe/1", payload=b"early"), version))
    assert isinstance(raw.receive(), Connack)
    assert watcher.message().payload == b"early"


def test_mqtt_3_1_4_2_take_over_closes_the_old_connection(broker: Broker, version: int) -> None:
    first = RawClient(broker.address, version=version)
    first.connect(client_id="same")
    second = RawClient(broker.address, version=version)
    assert second.connect(client_id="same").reason_code == 0
    packets = first.expect_closed()
    if version == 5:  # [MQTT-3.1.4-3] DISCONNECT 0x8E
        assert packets == [Disconnect(reason_code=ReasonCode.SESSION_TAKEN_OVER)]
    second.ping()


def test_take_over_publishes_the_old_will(broker: Broker) -> None:
    watcher = PahoClient(broker.address)
    watcher.connect()
    watcher.subscribe("wills/#")
    first = RawClient(broker.address)
    first.connect(client_id="twin", will=Will(topic="wills/twin", payload=b"gone"))
    second = RawClient(broker.address)
    second.connect(client_id="twin")
    assert watcher.message().payload == b"gone"


def test_mqtt_3_2_2_2_session_present(broker: Broker, version: int) -> None:
    properties = Properties(session_expiry_interval=300) if version == 5 else Properties()
    raw = RawClient(broker.address, version=version)
    assert raw.connect(client_id="sp", clean_start=False,
                       properties=properties).session_present is False
    raw.send(Disconnect())
    raw.expect_closed()
    again = RawClient(broker.address, version=version)
    assert again.connect(client_id="sp", clean_start=False,
                         properties=properties).session_present is True
    again.close()
    clean = RawClient(broker.address, version=version)
    # [MQTT-3.2.2-1]: a clean start never has a session present.
    assert clean.connect(client_id="sp", clean_start=True).session_present is False


def test_max_keepalive_v311_refused_with_return_code_2(make_broker: BrokerFactory) -> None:
    """Robustness B5 6: 0 means unlimited, so it is over the maximum too."""
    broker = make_broker(max_keepalive=300)
    for keepalive in (65_535, 0):
        raw = RawClient(broker.address)
        raw.send(Connect(client_id="ka", keep_alive=keepalive))
        assert raw.expect_closed() == [Connack(reason_code=2)]
    assert RawClient(broker.address).connect(keep_alive=300) == Connack()


def test_mqtt_3_2_2_21_max_keepalive_v5_server_keep_alive(make_broker: BrokerFactory) -> None:
    broker = make_broker(max_keepalive=300)
    raw = RawClient(broker.address, version=5)
    connack = raw.connect(keep_alive=0)
    assert connack.properties.server_keep_alive == 300


def test_mqtt_3_1_2_24_keepalive_timeout_closes_and_publishes_will(
        broker: Broker, version: int) -> None:
    watcher = PahoClient(broker.address)
    watcher.connect()
    watcher.subscribe("wills/#")
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id="silent", keep_alive=1,
                will=Will(topic="wills/silent", payload=b"timed out"))
    packets = raw.expect_closed(timeout=4)  # closed at 1.5 s of silence
    if version == 5:
        assert packets == [Disconnect(reason_code=ReasonCode.KEEP_ALIVE_TIMEOUT)]
    assert watcher.message().payload == b"timed out"


def test_keepalive_is_kept_by_pings(broker: Broker) -> None:
    raw = RawClient(broker.address)
    raw.connect(keep_alive=1)
    for _ in range(4):  # 4 x 0.5 s > 1.5 s: the pings keep the connection alive
        raw.sock.settimeout(0.5)
        try:
            raw.sock.recv(1)
            raise AssertionError("the broker sent something or closed")
        except TimeoutError:
            pass
        raw.ping()


def test_connect_timeout_closes_a_silent_socket(make_broker: BrokerFactory) -> None:
    broker = make_broker(connect_timeout=0.5)
    raw = RawClient(broker.address)
    raw.send_bytes(b"\x10")  # a CONNECT that never completes (slowloris)
    assert raw.expect_closed(timeout=3) == []


def test_mqtt_4_12_0_1_authentication_method_refused(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    raw.send(Connect(client_id="a", protocol_version=5,
                     properties=Properties(authentication_method="SCRAM-SHA-1")))
    assert raw.expect_closed() == [Connack(reason_code=ReasonCode.BAD_AUTHENTICATION_METHOD)]


def test_mqtt_3_2_2_12_will_qos_not_supported(make_broker: BrokerFactory) -> None:
    broker = make_broker(max_qos=1)
    raw = RawClient(broker.address, version=5)
    raw.send(Connect(client_id="w", protocol_version=5, will=Will(topic="w", qos=2)))
    assert raw.expect_closed() == [Connack(reason_code=ReasonCode.QOS_NOT_SUPPORTED)]


def test_v5_malformed_connect_answered_with_connack_0x81(broker: Broker) -> None:
    raw = RawClient(broker.address, version=5)
    # CONNECT whose client id is ill-formed UTF-8 (robustness B5 9).
    raw.send_bytes(bytes.fromhex("100f00044d5154540502003c000002c0af"))
    assert raw.expect_closed() == [Connack(reason_code=ReasonCode.MALFORMED_PACKET)]


def test_paho_connects_with_both_versions(broker: Broker, version: int) -> None:
    client = PahoClient(broker.address, client_id="paho", version=version)
    session_present, rc, _ = client.connect()
    assert (session_present, rc) == (False, 0)
    assert client.subscribe("t", qos=1)[0] == 1
    client.disconnect()
    wait_until(lambda: "paho" not in broker.core.sessions, what="the clean session to end")
