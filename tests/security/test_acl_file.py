"""Access control with mosquitto's ACL file: the issue's example, the refusal codes in both
protocol versions, patterns (and a client id that tries to widen one), $SYS, retained
messages and wills."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from mqlite.broker import Access, Broker, ClientInfo, Hook
from mqlite.protocol import (
    Connack,
    Connect,
    Puback,
    Publish,
    Pubrec,
    Suback,
    Subscribe,
    Subscription,
    Will,
)

from ..broker.helpers import RawClient

EXAMPLE = "topic readwrite #\ntopic deny test/nosubscribe\n"


def broker_with(tmp_path: Path, acl: str, **settings: object) -> Broker:
    path = tmp_path / "acl"
    path.write_text(acl)
    broker = Broker(port=0, acl_file=str(path), sys_interval=0, **settings)  # type: ignore[arg-type]
    broker.start()
    return broker


def codes(client: RawClient, *filters: str) -> list[int]:
    client.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter=f, qos=1)
                                                      for f in filters]))
    suback = client.receive()
    assert isinstance(suback, Suback)
    return suback.reason_codes


@pytest.mark.parametrize(("version", "refused"), [(4, 0x80), (5, 0x87)])
def test_the_example(tmp_path: Path, version: int, refused: int) -> None:
    broker = broker_with(tmp_path, EXAMPLE)
    try:
        sub = RawClient(broker.address, version=version)
        sub.connect(client_id="sub", protocol_version=version)
        assert codes(sub, "test/nosubscribe", "test/#") == [refused, 1]
        pub = RawClient(broker.address, version=version)
        pub.connect(client_id="pub", protocol_version=version)
        pub.send(Publish(topic="test/nosubscribe", payload=b"no", qos=1, packet_id=1))
        ack = pub.receive()
        assert isinstance(ack, Puback) and ack.reason_code == (0x87 if version == 5 else 0)
        pub.send(Publish(topic="test/nosubscribe", payload=b"no", qos=0))
        pub.send(Publish(topic="test/ok", payload=b"yes", qos=1, packet_id=2))
        assert isinstance(pub.receive(), Puback)
        got = sub.receive()
        assert isinstance(got, Publish) and got.topic == "test/ok", \
            "nothing from test/nosubscribe arrived before it"
    finally:
        broker.stop()


def test_qos2_refused_and_delivery_filtered_for_a_user(tmp_path: Path) -> None:
    acl = "user alice\ntopic read in/#\ntopic write out/#\ntopic deny in/secret\n"
    broker = broker_with(tmp_path, acl)
    try:
        # No password file: usernames are taken as given (anonymous has no rules here).
        alice = RawClient(broker.address, version=5)
        alice.connect(client_id="a", username="alice", protocol_version=5)
        assert codes(alice, "in/#", "out/#") == [1, 0x87]
        writer = RawClient(broker.address, version=5)
        writer.connect(client_id="w", username="alice", protocol_version=5)
        writer.send(Publish(topic="in/x", payload=b"", qos=2, packet_id=3))
        pubrec = writer.receive()
        assert isinstance(pubrec, Pubrec) and pubrec.reason_code == 0x87
        anonymous = RawClient(broker.address)
        anonymous.connect(client_id="anon")
        assert codes(anonymous, "#") == [0x80], "anonymous clients have no rules in this file"
    finally:
        broker.stop()


def test_a_pattern_is_never_widened_by_a_client_id(tmp_path: Path) -> None:
    broker = broker_with(tmp_path, "pattern readwrite devices/%c/#\n")
    try:
        good = RawClient(broker.address)
        good.connect(client_id="d1")
        assert codes(good, "devices/d1/#", "devices/d2/#") == [1, 0x80]
        sneaky = RawClient(broker.address)
        sneaky.connect(client_id="#")  # devices/#/# must not become devices/#
        assert codes(sneaky, "devices/d1/#", "devices/#") == [0x80, 0x80]
    finally:
        broker.stop()


def test_sys_is_readable_only_where_the_acl_allows(tmp_path: Path) -> None:
    broker = broker_with(tmp_path, "topic read #\nuser admin\ntopic read $SYS/#\n")
    try:
        anonymous = RawClient(broker.address)
        anonymous.connect(client_id="anon")
        assert codes(anonymous, "$SYS/#") == [0x80], "# does not reach $SYS topics"
        admin = RawClient(broker.address)
        admin.connect(client_id="admin", username="admin")
        assert codes(admin, "$SYS/#") == [1]
    finally:
        broker.stop()


def test_retained_messages_and_wills_are_checked(tmp_path: Path) -> None:
    acl = "topic readwrite open/#\ntopic write hidden/#\n"
    broker = broker_with(tmp_path, acl)
    try:
        pub = RawClient(broker.address)
        pub.connect(client_id="pub")
        for topic in ("open/r", "hidden/r"):
            pub.send(Publish(topic=topic, payload=b"kept", qos=1, packet_id=1, retain=True))
            assert isinstance(pub.receive(), Puback)
        reader = RawClient(broker.address)
        reader.connect(client_id="reader")
        assert codes(reader, "open/#") == [1]
        got = reader.receive()
        assert isinstance(got, Publish) and got.topic == "open/r"
        reader.ping()  # hidden/r is not readable: it never came
        for version, code in ((4, 5), (5, 0x87)):
            willing = RawClient(broker.address, version=version)
            willing.send(Connect(client_id="w", protocol_version=version,
                                 will=Will(topic="elsewhere", payload=b"bye")))
            connack = willing.receive()
            assert isinstance(connack, Connack) and connack.reason_code == code
    finally:
        broker.stop()


def test_a_shared_subscription_is_checked_on_the_filter_it_matches(tmp_path: Path) -> None:
    """As mosquitto (and Paho's test_shared_subscriptions) expect: `topic readwrite #` grants
    `$share/g/t/x`; a deny on the inner filter refuses it."""
    broker = broker_with(tmp_path, EXAMPLE)
    try:
        sub = RawClient(broker.address, version=5)
        sub.connect(client_id="member", protocol_version=5)
        assert codes(sub, "$share/g/t/x", "$share/g/test/nosubscribe") == [1, 0x87]
        pub = RawClient(broker.address, version=5)
        pub.connect(client_id="pub", protocol_version=5)
        pub.send(Publish(topic="t/x", payload=b"shared", qos=1, packet_id=1))
        assert isinstance(pub.receive(), Puback)
        got = sub.receive()
        assert isinstance(got, Publish) and got.payload == b"shared"
    finally:
        broker.stop()


def test_an_access_hook_is_asked_about_a_shared_subscriptions_inner_filter() -> None:
    asked: list[str] = []

    class Rules(Hook):
        def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
            asked.append(topic)
            return topic.startswith("allowed/")

    with Broker(port=0, hooks=[Rules()], sys_interval=0) as broker:
        sub = RawClient(broker.address, version=5)
        sub.connect(client_id="member", protocol_version=5)
        assert codes(sub, "$share/g/allowed/#", "$share/g/other/#") == [1, 0x87]
        assert asked == ["allowed/#", "other/#"]


def test_denials_are_logged_with_client_user_listener_and_topic_rate_limited(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mqlite.broker")
    broker = broker_with(tmp_path, EXAMPLE)
    try:
        client = RawClient(broker.address, version=5)
        client.connect(client_id="denied-one", protocol_version=5)
        assert codes(client, "test/nosubscribe") == [0x87]
        started = time.monotonic()
        for packet_id in range(1, 51):
            client.send(Publish(topic="test/nosubscribe", payload=b"no", qos=1,
                                packet_id=packet_id))
        for _ in range(50):
            ack = client.receive()
            assert isinstance(ack, Puback) and ack.reason_code == 0x87
        seconds = time.monotonic() - started
    finally:
        broker.stop()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Denied")]
    listener = f"tcp:{broker.address[1]}"
    assert lines[0] == (f"Denied SUBSCRIBE from denied-one (user (none), listener {listener}): "
                        "read access to 'test/nosubscribe'")
    assert lines[1].startswith("Denied PUBLISH from denied-one (user (none), listener ")
    assert "write access to 'test/nosubscribe'" in lines[1]
    assert len(lines) <= 10 * (int(seconds) + 2) < 51, "rate limited"
