"""Bad input and faults (tests/robustness/CASES.md 1-24, those that apply without auth) against
a broker process. After each case: the broker is alive, a control client connected beforehand still
gets PINGRESP, and the broker's memory stayed bounded."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator

import pytest

from mqlite.protocol import (
    Connack,
    Connect,
    Disconnect,
    Properties,
    Publish,
    Pubrec,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
    Will,
    encode,
)
from mqlite.protocol.wire import encode_string, encode_vbi

from ..broker.helpers import PahoClient, RawClient
from ..broker_process import BrokerProcess

MAX_PACKET = 65_536


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with BrokerProcess("--max-packet-size", str(MAX_PACKET), "--connect-timeout", "1") as process:
        yield process
        assert process.terminate() == 0


@pytest.fixture
def control(broker: BrokerProcess) -> Iterator[RawClient]:
    """Connected before the bad input; must still be served after it."""
    client = RawClient(broker.address)
    client.connect(client_id="control", keep_alive=0)
    rss_before = broker.rss_kib()
    yield client
    assert broker.proc.poll() is None, "the broker died"
    client.ping()
    growth = broker.rss_kib() - rss_before
    assert growth < 50 * 1024, f"broker RSS grew by {growth} KiB"
    client.close()


def _frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_vbi(len(body)) + body


def _connected(broker: BrokerProcess, version: int = 4, **fields: object) -> RawClient:
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id=str(fields.pop("client_id", "bad")), **fields)
    return raw


def _watcher(broker: BrokerProcess, topic: str = "#") -> PahoClient:
    watcher = PahoClient(broker.address, client_id=f"watch-{topic}", version=5)
    watcher.connect()
    watcher.subscribe(topic, qos=1)
    return watcher


# B5 1: first packet not CONNECT, declaring a huge length, on 14 sockets.
def test_b5_1_huge_first_packet_not_connect(broker: BrokerProcess, control: RawClient) -> None:
    socks = []
    for first in (0x20, 0x30, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0, 0xC0, 0xD0, 0xE0,
                  0xF0):
        raw = RawClient(broker.address)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # closed mid-send
            raw.send_bytes(bytes([first, 0x80, 0x80, 0x80, 0x74]) + b"\x01" * 65_536)
        socks.append(raw)
    for raw in socks:
        assert raw.expect_closed() == []


def test_b5_2_fifth_remaining_length_byte(broker: BrokerProcess, control: RawClient) -> None:
    raw = RawClient(broker.address)
    raw.send_bytes(bytes.fromhex("10ffffffff01"))
    assert raw.expect_closed() == []


def test_b5_3_connect_over_the_connect_limit(broker: BrokerProcess, control: RawClient) -> None:
    raw = RawClient(broker.address)
    raw.send_bytes(bytes([0x10, 0x80, 0x80, 0x40]))  # declares 1 MiB, sends none of it
    assert raw.expect_closed() == []


@pytest.mark.parametrize("version", [4, 5])
def test_b5_4_publish_over_max_packet_size(broker: BrokerProcess, control: RawClient,
                                           version: int) -> None:
    raw = _connected(broker, version)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # closed mid-send: fine
        raw.send(Publish(topic="big", payload=b"x" * (1024 * 1024)))
    expected = [Disconnect(reason_code=ReasonCode.PACKET_TOO_LARGE)] if version == 5 else []
    assert raw.expect_closed() == expected


def test_b5_5_slowloris_closed_at_connect_timeout(broker: BrokerProcess,
                                                  control: RawClient) -> None:
    socks = [RawClient(broker.address) for _ in range(200)]
    for raw in socks:
        raw.send_bytes(b"\x10\x0c")  # a CONNECT that never completes
    for raw in socks:
        assert raw.expect_closed(timeout=5) == []  # connect timeout 1 s, from accept


def test_b5_8_client_ids_with_wildcards_accepted_nul_refused(broker: BrokerProcess,
                                                              control: RawClient) -> None:
    for client_id in ("+", "#", "a/b"):
        assert _connected(broker, client_id=client_id) is not None
    raw = RawClient(broker.address)
    raw.send_bytes(_frame(0x10, encode_string("MQTT") + b"\x04\x02\x00\x3c" + b"\x00\x01\x00"))
    assert raw.expect_closed() == []


BAD_UTF8 = [b"\xc0\xaf", b"\xed\xa0\x80", b"\x00"]


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "nul"])
def test_b5_9_invalid_utf8_topic_closed_and_not_forwarded(broker: BrokerProcess,
                                                          control: RawClient,
                                                          bad: bytes) -> None:
    watcher = _watcher(broker)
    raw = _connected(broker, 5)
    raw.send_bytes(_frame(0x30, struct.pack(">H", len(bad)) + bad + b"\x00x"))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.MALFORMED_PACKET)]
    watcher.no_message()


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "nul"])
def test_b5_9_invalid_utf8_will_topic_gets_connack_0x81(broker: BrokerProcess,
                                                        control: RawClient,
                                                        bad: bytes) -> None:
    raw = RawClient(broker.address, version=5)
    body = encode_string("MQTT") + b"\x05\x06\x00\x3c\x00" + encode_string("w") + b"\x00"
    body += struct.pack(">H", len(bad)) + bad + encode_string("x")
    raw.send_bytes(_frame(0x10, body))
    assert raw.expect_closed() == [Connack(reason_code=ReasonCode.MALFORMED_PACKET)]


@pytest.mark.parametrize("topic", ["a/+/b", "#", "a/#"])
def test_b5_10_wildcard_in_publish_topic(broker: BrokerProcess, control: RawClient,
                                         topic: str) -> None:
    raw = _connected(broker, 5)
    raw.send_bytes(_frame(0x30, encode_string(topic) + b"\x00x"))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.TOPIC_NAME_INVALID)]


def test_b5_11_zero_length_topic(broker: BrokerProcess, control: RawClient) -> None:
    raw = _connected(broker, 4)
    raw.send_bytes(bytes.fromhex("30020000"))
    assert raw.expect_closed() == []
    raw = _connected(broker, 5)
    raw.send_bytes(bytes.fromhex("3003000000"))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)]


@pytest.mark.parametrize("data", ["320500016100 00", "82060000000161 00", "a2050000000161"],
                         ids=["publish", "subscribe", "unsubscribe"])
def test_b5_12_packet_id_zero(broker: BrokerProcess, control: RawClient, data: str) -> None:
    raw = _connected(broker, 4)
    raw.send_bytes(bytes.fromhex(data.replace(" ", "")))
    assert raw.expect_closed() == []


@pytest.mark.parametrize("data", ["3605000161 0001", "800600010001 6100", "60020001", "c100",
                                  "c00100"],
                         ids=["publish-qos3", "subscribe-flags", "pubrel-flags", "pingreq-flags",
                              "pingreq-length"])
def test_b5_13_bad_fixed_header_flags(broker: BrokerProcess, control: RawClient,
                                      data: str) -> None:
    raw = _connected(broker, 4)
    raw.send_bytes(bytes.fromhex(data.replace(" ", "")))
    assert raw.expect_closed() == []


@pytest.mark.parametrize("data", ["3203000161", "82050001000161", "3005ffff616161"],
                         ids=["publish-no-id", "subscribe-no-options", "long-string"])
def test_b5_14_truncated_packets(broker: BrokerProcess, control: RawClient, data: str) -> None:
    raw = _connected(broker, 5)
    raw.send_bytes(bytes.fromhex(data))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.MALFORMED_PACKET)]


@pytest.mark.parametrize("data", ["20020000", "9003000100", "d000"],
                         ids=["connack", "suback", "pingresp"])
def test_b5_15_server_only_packets_from_a_client(broker: BrokerProcess, control: RawClient,
                                                 data: str) -> None:
    raw = _connected(broker, 5)
    raw.send_bytes(bytes.fromhex(data))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)]


def test_b5_16_invalid_filters(broker: BrokerProcess, control: RawClient) -> None:
    bad = ["a/#/b", "a#", "a/b+"]
    for version, failure in ((4, 0x80), (5, 0x8F)):
        raw = _connected(broker, version)
        raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter=f)
                                                       for f in bad]))
        assert raw.receive() == Suback(packet_id=1, reason_codes=[failure] * 3)
        raw.ping()
    raw = _connected(broker, 4)
    raw.send_bytes(bytes.fromhex("82020001"))  # no filters [MQTT-3.8.3-3]
    assert raw.expect_closed() == []
    raw = _connected(broker, 5)
    raw.send_bytes(_frame(0x82, b"\x00\x01\x00" + encode_string("$share/g/t") + b"\x04"))
    assert raw.expect_closed() == [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)]


@pytest.mark.parametrize("first", [0x82, 0xA2], ids=["subscribe", "unsubscribe"])
def test_mqtt_4_7_3_1_empty_filter_closes_the_connection(broker: BrokerProcess,
                                                        control: RawClient, first: int) -> None:
    """An empty filter is a Protocol Error, not a failed filter: no SUBACK 0x8F / UNSUBACK
    0x11, but DISCONNECT 0x82 (MQTT 5) or a plain close (3.1.1)."""
    options = b"\x00" if first == 0x82 else b""
    for version, expected in ((4, []), (5, [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)])):
        raw = _connected(broker, version)
        props = b"\x00" if version == 5 else b""
        raw.send_bytes(_frame(first, b"\x00\x07" + props + encode_string("") + options))
        assert raw.expect_closed() == expected


def test_b5_17_deep_hierarchy(broker: BrokerProcess, control: RawClient) -> None:
    """60,000 levels (65,535 would not fit this broker's 64 KiB packet limit)."""
    raw = _connected(broker, 4)
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="/" * 60_000)]))
    assert raw.receive() == Suback(packet_id=1, reason_codes=[0x80])
    raw.send_bytes(_frame(0x30, encode_string("/" * 60_000)))
    assert raw.expect_closed() == []


@pytest.mark.parametrize("version", [4, 5])
def test_b5_17_level_limit_200_levels_for_filters_and_names(broker: BrokerProcess,
                                                           control: RawClient,
                                                           version: int) -> None:
    """200 levels (199 separators) pass, 201 do not: SUBACK failure for a filter, a closed
    connection for a topic name (MQTT 5: DISCONNECT 0x90)."""
    deepest, too_deep = "/".join(["l"] * 200), "/".join(["l"] * 201)
    raw = _connected(broker, version)
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter=deepest),
                                                   Subscription(topic_filter=too_deep)]))
    failure = 0x8F if version == 5 else 0x80
    assert raw.receive() == Suback(packet_id=1, reason_codes=[0, failure])
    raw.send(Publish(topic=deepest, payload=b"deep"))
    delivered = raw.receive()
    assert isinstance(delivered, Publish) and delivered.topic == deepest
    raw.send_bytes(_frame(0x30, encode_string(too_deep) + (b"\x00" if version == 5 else b"")))
    expected = [Disconnect(reason_code=ReasonCode.TOPIC_NAME_INVALID)] if version == 5 else []
    assert raw.expect_closed() == expected


def test_b5_18_subscription_flood(broker: BrokerProcess, control: RawClient) -> None:
    raw = _connected(broker, 5)
    filters = [Subscription(topic_filter=f"flood/{i}") for i in range(3000)]
    raw.send(Subscribe(packet_id=1, subscriptions=filters))
    suback = raw.receive()
    assert isinstance(suback, Suback)
    assert suback.reason_codes[:1000] == [0] * 1000  # max_subscriptions = 1000
    assert suback.reason_codes[1000:] == [ReasonCode.QUOTA_EXCEEDED] * 2000


def test_b5_20_qos2_same_id_is_routed_once(broker: BrokerProcess, control: RawClient) -> None:
    watcher = _watcher(broker, "q2abuse")
    raw = _connected(broker, 4)
    for _ in range(1000):
        raw.send(Publish(topic="q2abuse", payload=b"x", qos=2, packet_id=7))
    for _ in range(1000):
        assert raw.receive() == Pubrec(packet_id=7)
    assert watcher.message().payload == b"x"
    watcher.no_message()


@pytest.mark.parametrize("version", [4, 5])
def test_b5_20_qos2_never_released_is_bounded(broker: BrokerProcess, control: RawClient,
                                              version: int) -> None:
    raw = _connected(broker, version)
    # One write of 101, so the broker reads them all before it closes: closing with input
    # unread would send an RST that can discard the replies before it.
    raw.send_bytes(b"".join(encode(Publish(topic="never/released", qos=2, packet_id=i), version)
                            for i in range(1, 102)))
    packets = raw.expect_closed()
    assert sum(isinstance(p, Pubrec) for p in packets) == 100  # receive maximum 100
    if version == 5:
        assert packets[-1] == Disconnect(reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)


def test_b5_21_never_reading_subscriber_costs_only_itself(broker: BrokerProcess,
                                                          control: RawClient) -> None:
    """20 MiB published while one subscriber reads nothing: the broker's memory stays bounded
    (checked by the control fixture) and other subscribers still get new messages at once."""
    stuck = RawClient(broker.address)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(client_id="stuck")
    stuck.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="busy/0"),
                                                     Subscription(topic_filter="busy/1", qos=1)]))
    assert isinstance(stuck.receive(), Suback)  # and then it stops reading
    other = _watcher(broker, "after/flood")
    publisher = _connected(broker, 4, client_id="firehose")
    payload = b"p" * 1024
    stream = b"".join(encode(Publish(topic=f"busy/{i % 2}", payload=payload), 4)
                      for i in range(20_000))
    publisher.sock.sendall(stream)
    publisher.ping()  # the broker has read and routed all of it
    publisher.send(Publish(topic="after/flood", payload=b"still served", qos=1, packet_id=1))
    assert other.message().payload == b"still served"


def test_b5_22_peer_resets_mid_write_will_published_once(broker: BrokerProcess,
                                                         control: RawClient) -> None:
    watcher = _watcher(broker, "wills/#")
    raw = _connected(broker, 4, client_id="resetter",
                     will=Will(topic="wills/reset", payload=b"once"))
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="noise")]))
    raw.receive()
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # RST
    assert watcher.message().payload == b"once"
    watcher.no_message()
    half = _connected(broker, 4, client_id="half", will=Will(topic="wills/half", payload=b"h"))
    half.sock.shutdown(socket.SHUT_WR)
    assert half.expect_closed() == []
    assert watcher.message().payload == b"h"


def test_b5_23_v5_property_abuse(broker: BrokerProcess, control: RawClient) -> None:
    raw = RawClient(broker.address, version=5)
    pairs = tuple((f"k{i}", "v") for i in range(5000))
    assert raw.connect(client_id="props", properties=Properties(user_property=pairs)) == Connack(
        properties=raw_props(raw))
    for props_bytes, code in ((b"\x11\x00\x00\x00\x0a" * 2, ReasonCode.PROTOCOL_ERROR),
                              (b"\x21\x00\x00", ReasonCode.PROTOCOL_ERROR)):
        raw = RawClient(broker.address, version=5)
        body = encode_string("MQTT") + b"\x05\x02\x00\x3c" + encode_vbi(len(props_bytes))
        raw.send_bytes(_frame(0x10, body + props_bytes + encode_string("p")))
        assert raw.expect_closed() == [Connack(reason_code=code)]


def raw_props(raw: RawClient) -> Properties:
    """The limits this broker advertises in every MQTT 5 CONNACK."""
    return Properties(receive_maximum=100, maximum_packet_size=MAX_PACKET, topic_alias_maximum=10)


@pytest.mark.parametrize("data,version", [("e00100", 4), ("e00105", 5), ("e00104", 5)],
                         ids=["v3-length-1", "v5-bad-reason", "v5-with-will"])
def test_b5_24_malformed_or_will_disconnect_publishes_the_will(
        broker: BrokerProcess, control: RawClient, data: str, version: int) -> None:
    watcher = _watcher(broker, f"wills/{data}")
    raw = _connected(broker, version, client_id=f"d{data}",
                     will=Will(topic=f"wills/{data}", payload=b"will"))
    raw.send_bytes(bytes.fromhex(data))
    raw.expect_closed()
    assert watcher.message().payload == b"will"


def test_second_connect_then_normal_traffic_unaffected(broker: BrokerProcess,
                                                       control: RawClient) -> None:
    raw = _connected(broker, 4)
    raw.send(Connect(client_id="again"))
    assert raw.expect_closed() == []
