"""Golden byte vectors, written by hand from the spec's packet layouts and annotated field by
field. Encode tests check ``encode(packet) == bytes``; decode tests feed the bytes whole, byte by
byte, and followed by the next vector's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mqlite.protocol import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)


@dataclass(frozen=True)
class Vector:
    name: str
    version: int
    packet: Packet
    fields: tuple[tuple[str, str], ...]  # (hex, what it is)

    @property
    def data(self) -> bytes:
        return bytes.fromhex("".join(hex_ for hex_, _ in self.fields))


VECTORS = [
    Vector("3.1.1 CONNECT minimal", 4, Connect(client_id="c1", keep_alive=60), (
        ("10", "CONNECT, flags 0000"),
        ("0e", "remaining length 14"),
        ("0004 4d515454", "protocol name 'MQTT'"),
        ("04", "protocol level 4"),
        ("02", "connect flags: clean session"),
        ("003c", "keep alive 60"),
        ("0002 6331", "client id 'c1'"),
    )),
    Vector("3.1.1 CONNECT with will and credentials", 4, Connect(
        client_id="dev", clean_start=False, keep_alive=30,
        will=Will(topic="w/t", payload=b"bye", qos=1, retain=True),
        username="u", password=b"pw",
    ), (
        ("10", "CONNECT"),
        ("20", "remaining length 32"),
        ("0004 4d515454", "protocol name 'MQTT'"),
        ("04", "protocol level 4"),
        ("ec", "flags: user name, password, will retain, will QoS 1, will; not clean"),
        ("001e", "keep alive 30"),
        ("0003 646576", "client id 'dev'"),
        ("0003 772f74", "will topic 'w/t'"),
        ("0003 627965", "will payload 'bye'"),
        ("0001 75", "user name 'u'"),
        ("0002 7077", "password 'pw'"),
    )),
    Vector("3.1 CONNECT (MQIsdp)", 3, Connect(client_id="c", protocol_version=3), (
        ("10", "CONNECT"),
        ("0f", "remaining length 15"),
        ("0006 4d5149736470", "protocol name 'MQIsdp'"),
        ("03", "protocol level 3"),
        ("02", "clean session"),
        ("003c", "keep alive 60"),
        ("0001 63", "client id 'c'"),
    )),
    Vector("3.1.1 bridge CONNECT (mosquitto's try_private)", 4, Connect(
        client_id="h.b", clean_start=False, bridge=True), (
        ("10", "CONNECT"),
        ("0f", "remaining length 15"),
        ("0004 4d515454", "protocol name 'MQTT'"),
        ("84", "protocol level 4 with the bridge bit"),
        ("00", "flags: not clean"),
        ("003c", "keep alive 60"),
        ("0003 682e62", "client id 'h.b'"),
    )),
    Vector("3.1 bridge CONNECT", 3, Connect(client_id="b", protocol_version=3, bridge=True), (
        ("10", "CONNECT"),
        ("0f", "remaining length 15"),
        ("0006 4d5149736470", "protocol name 'MQIsdp'"),
        ("83", "protocol level 3 with the bridge bit"),
        ("02", "clean session"),
        ("003c", "keep alive 60"),
        ("0001 62", "client id 'b'"),
    )),
    Vector("3.1 CONNACK accepted", 3, Connack(), (
        ("20", "CONNACK"),
        ("02", "remaining length 2"),
        ("00", "reserved (3.1 has no session present)"),
        ("00", "return code 0: accepted"),
    )),
    Vector("3.1 SUBACK", 3, Suback(packet_id=7, reason_codes=[0, 1, 2]), (
        ("90", "SUBACK"),
        ("05", "remaining length 5"),
        ("0007", "packet id 7"),
        ("000102", "granted QoS 0, 1, 2"),
    )),
    Vector("3.1 PUBLISH QoS 1", 3, Publish(topic="a/b", payload=b"hi", qos=1, packet_id=1), (
        ("32", "PUBLISH, QoS 1"),
        ("09", "remaining length 9"),
        ("0003 612f62", "topic 'a/b'"),
        ("0001", "packet id 1"),
        ("6869", "payload 'hi'"),
    )),
    Vector("5.0 CONNECT with properties and will properties", 5, Connect(
        client_id="c5", protocol_version=5,
        properties=Properties(session_expiry_interval=3600, receive_maximum=20),
        will=Will(topic="w", payload=b"x", properties=Properties(will_delay_interval=5)),
    ), (
        ("10", "CONNECT"),
        ("23", "remaining length 35"),
        ("0004 4d515454", "protocol name 'MQTT'"),
        ("05", "protocol level 5"),
        ("06", "flags: will, clean start"),
        ("003c", "keep alive 60"),
        ("08", "property length 8"),
        ("11 00000e10", "session expiry interval 3600"),
        ("21 0014", "receive maximum 20"),
        ("0002 6335", "client id 'c5'"),
        ("05", "will property length 5"),
        ("18 00000005", "will delay interval 5"),
        ("0001 77", "will topic 'w'"),
        ("0001 78", "will payload 'x'"),
    )),
    Vector("3.1.1 CONNACK session present", 4, Connack(session_present=True), (
        ("20", "CONNACK"), ("02", "remaining length 2"),
        ("01", "session present"), ("00", "return code 0: accepted"),
    )),
    Vector("3.1.1 CONNACK identifier rejected", 4, Connack(reason_code=2), (
        ("20", "CONNACK"), ("02", "remaining length 2"),
        ("00", "no session"), ("02", "return code 2: identifier rejected"),
    )),
    Vector("5.0 CONNACK with properties", 5, Connack(properties=Properties(
        assigned_client_identifier="auto-1", receive_maximum=100, topic_alias_maximum=10,
    )), (
        ("20", "CONNACK"), ("12", "remaining length 18"),
        ("00", "no session"), ("00", "reason code 0: success"),
        ("0f", "property length 15"),
        ("12 0006 6175746f2d31", "assigned client identifier 'auto-1'"),
        ("21 0064", "receive maximum 100"),
        ("22 000a", "topic alias maximum 10"),
    )),
    Vector("3.1.1 PUBLISH QoS 0", 4, Publish(topic="a/b", payload=b"hi"), (
        ("30", "PUBLISH, QoS 0"), ("07", "remaining length 7"),
        ("0003 612f62", "topic 'a/b'"), ("6869", "payload 'hi'"),
    )),
    Vector("3.1.1 PUBLISH QoS 1 dup retain", 4, Publish(
        topic="t", payload=b"x", qos=1, retain=True, dup=True, packet_id=10,
    ), (
        ("3b", "PUBLISH, DUP, QoS 1, RETAIN"), ("06", "remaining length 6"),
        ("0001 74", "topic 't'"), ("000a", "packet id 10"), ("78", "payload 'x'"),
    )),
    Vector("3.1.1 PUBLISH QoS 2 empty payload", 4, Publish(
        topic="x/y", qos=2, packet_id=0xFFFF,
    ), (
        ("34", "PUBLISH, QoS 2"), ("07", "remaining length 7"),
        ("0003 782f79", "topic 'x/y'"), ("ffff", "packet id 65535"),
    )),
    Vector("5.0 PUBLISH QoS 1 with properties", 5, Publish(
        topic="t", payload=b"{}", qos=1, packet_id=1, properties=Properties(
            payload_format_indicator=1, message_expiry_interval=60, content_type="json",
            response_topic="r", correlation_data=b"\x01\x02", user_property=(("k", "v"),),
        ),
    ), (
        ("32", "PUBLISH, QoS 1"), ("26", "remaining length 38"),
        ("0001 74", "topic 't'"), ("0001", "packet id 1"),
        ("1e", "property length 30"),
        ("01 01", "payload format indicator: UTF-8"),
        ("02 0000003c", "message expiry interval 60"),
        ("03 0004 6a736f6e", "content type 'json'"),
        ("08 0001 72", "response topic 'r'"),
        ("09 0002 0102", "correlation data 01 02"),
        ("26 0001 6b 0001 76", "user property ('k', 'v')"),
        ("7b7d", "payload '{}'"),
    )),
    Vector("5.0 PUBLISH by topic alias", 5, Publish(
        topic="", payload=b"z", properties=Properties(topic_alias=5),
    ), (
        ("30", "PUBLISH, QoS 0"), ("07", "remaining length 7"),
        ("0000", "empty topic"), ("03", "property length 3"),
        ("23 0005", "topic alias 5"), ("7a", "payload 'z'"),
    )),
    Vector("5.0 PUBLISH with two subscription identifiers", 5, Publish(
        topic="s", properties=Properties(subscription_identifier=(1, 300)),
    ), (
        ("30", "PUBLISH, QoS 0"), ("09", "remaining length 9"),
        ("0001 73", "topic 's'"), ("05", "property length 5"),
        ("0b 01", "subscription identifier 1"),
        ("0b ac02", "subscription identifier 300 (variable byte integer)"),
    )),
    Vector("3.1.1 PUBACK", 4, Puback(packet_id=5), (
        ("40", "PUBACK"), ("02", "remaining length 2"), ("0005", "packet id 5"),
    )),
    Vector("5.0 PUBACK no matching subscribers", 5, Puback(packet_id=5, reason_code=0x10), (
        ("40", "PUBACK"), ("03", "remaining length 3"), ("0005", "packet id 5"),
        ("10", "reason code 0x10; property length omitted"),
    )),
    Vector("5.0 PUBACK success is 2 bytes", 5, Puback(packet_id=5), (
        ("40", "PUBACK"), ("02", "remaining length 2: reason and properties omitted"),
        ("0005", "packet id 5"),
    )),
    Vector("3.1.1 PUBREC", 4, Pubrec(packet_id=1), (
        ("50", "PUBREC"), ("02", "remaining length 2"), ("0001", "packet id 1"),
    )),
    Vector("3.1.1 PUBREL", 4, Pubrel(packet_id=1), (
        ("62", "PUBREL, flags 0010"), ("02", "remaining length 2"), ("0001", "packet id 1"),
    )),
    Vector("3.1.1 PUBCOMP", 4, Pubcomp(packet_id=1), (
        ("70", "PUBCOMP"), ("02", "remaining length 2"), ("0001", "packet id 1"),
    )),
    Vector("5.0 PUBREL not found with reason string", 5, Pubrel(
        packet_id=1, reason_code=0x92, properties=Properties(reason_string="gone"),
    ), (
        ("62", "PUBREL"), ("0b", "remaining length 11"), ("0001", "packet id 1"),
        ("92", "reason code 0x92: packet identifier not found"),
        ("07", "property length 7"), ("1f 0004 676f6e65", "reason string 'gone'"),
    )),
    Vector("3.1.1 SUBSCRIBE two filters", 4, Subscribe(packet_id=1, subscriptions=[
        Subscription(topic_filter="a/+", qos=1), Subscription(topic_filter="#", qos=2),
    ]), (
        ("82", "SUBSCRIBE, flags 0010"), ("0c", "remaining length 12"),
        ("0001", "packet id 1"),
        ("0003 612f2b", "filter 'a/+'"), ("01", "requested QoS 1"),
        ("0001 23", "filter '#'"), ("02", "requested QoS 2"),
    )),
    Vector("5.0 SUBSCRIBE with options and identifier", 5, Subscribe(
        packet_id=2, properties=Properties(subscription_identifier=(7,)), subscriptions=[
            Subscription(topic_filter="x/#", qos=1, no_local=True, retain_as_published=True,
                         retain_handling=2),
            Subscription(topic_filter="$share/g/y", retain_handling=1),
        ],
    ), (
        ("82", "SUBSCRIBE"), ("18", "remaining length 24"), ("0002", "packet id 2"),
        ("02", "property length 2"), ("0b 07", "subscription identifier 7"),
        ("0003 782f23", "filter 'x/#'"),
        ("2d", "options: retain handling 2, retain as published, no local, QoS 1"),
        ("000a 247368617265 2f67 2f79", "filter '$share/g/y'"),
        ("10", "options: retain handling 1, QoS 0"),
    )),
    Vector("3.1.1 SUBACK", 4, Suback(packet_id=1, reason_codes=[1, 0x80]), (
        ("90", "SUBACK"), ("04", "remaining length 4"), ("0001", "packet id 1"),
        ("01", "granted QoS 1"), ("80", "failure"),
    )),
    Vector("5.0 SUBACK", 5, Suback(packet_id=2, reason_codes=[1, 0x8F]), (
        ("90", "SUBACK"), ("05", "remaining length 5"), ("0002", "packet id 2"),
        ("00", "property length 0"),
        ("01", "granted QoS 1"), ("8f", "topic filter invalid"),
    )),
    Vector("3.1.1 UNSUBSCRIBE", 4, Unsubscribe(packet_id=3, topic_filters=["a/+"]), (
        ("a2", "UNSUBSCRIBE, flags 0010"), ("07", "remaining length 7"),
        ("0003", "packet id 3"), ("0003 612f2b", "filter 'a/+'"),
    )),
    Vector("5.0 UNSUBSCRIBE with user property", 5, Unsubscribe(
        packet_id=3, topic_filters=["a", "b"], properties=Properties(user_property=(("k", "v"),)),
    ), (
        ("a2", "UNSUBSCRIBE"), ("10", "remaining length 16"), ("0003", "packet id 3"),
        ("07", "property length 7"), ("26 0001 6b 0001 76", "user property ('k', 'v')"),
        ("0001 61", "filter 'a'"), ("0001 62", "filter 'b'"),
    )),
    Vector("3.1.1 UNSUBACK", 4, Unsuback(packet_id=3), (
        ("b0", "UNSUBACK"), ("02", "remaining length 2"), ("0003", "packet id 3"),
    )),
    Vector("5.0 UNSUBACK", 5, Unsuback(packet_id=3, reason_codes=[0, 0x11]), (
        ("b0", "UNSUBACK"), ("05", "remaining length 5"), ("0003", "packet id 3"),
        ("00", "property length 0"), ("00", "success"), ("11", "no subscription existed"),
    )),
    Vector("PINGREQ", 4, Pingreq(), (("c0", "PINGREQ"), ("00", "remaining length 0"))),
    Vector("PINGRESP", 5, Pingresp(), (("d0", "PINGRESP"), ("00", "remaining length 0"))),
    Vector("3.1.1 DISCONNECT", 4, Disconnect(), (("e0", "DISCONNECT"), ("00", "length 0"))),
    Vector("5.0 DISCONNECT normal is 2 bytes", 5, Disconnect(), (
        ("e0", "DISCONNECT"), ("00", "remaining length 0: reason 0, no properties"),
    )),
    Vector("5.0 DISCONNECT with will and session expiry", 5, Disconnect(
        reason_code=0x04, properties=Properties(session_expiry_interval=0),
    ), (
        ("e0", "DISCONNECT"), ("07", "remaining length 7"),
        ("04", "reason code 0x04: disconnect with will message"),
        ("05", "property length 5"), ("11 00000000", "session expiry interval 0"),
    )),
    Vector("5.0 AUTH continue", 5, Auth(reason_code=0x18, properties=Properties(
        authentication_method="SCRAM", authentication_data=b"\x00\x01",
    )), (
        ("f0", "AUTH"), ("0f", "remaining length 15"),
        ("18", "reason code 0x18: continue authentication"), ("0d", "property length 13"),
        ("15 0005 5343524 14d".replace(" ", ""), "authentication method 'SCRAM'"),
        ("16 0002 0001", "authentication data 00 01"),
    )),
    Vector("5.0 AUTH success is 2 bytes", 5, Auth(), (
        ("f0", "AUTH"), ("00", "remaining length 0"),
    )),
]
