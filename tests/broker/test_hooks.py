"""The Hook API: authentication, access checks, message rewriting and events; chaining, a
hook that raises, and every refusal code in both protocol versions."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from mqlite.broker import Access, Broker, ClientInfo, Hook, Message
from mqlite.protocol import (
    Connack,
    ConnackReturnCode,
    Connect,
    Properties,
    Puback,
    Publish,
    Pubrec,
    ReasonCode,
    Suback,
    Subscribe,
    Subscription,
    Unsubscribe,
    Will,
)

from ..conftest import BrokerFactory
from .helpers import PahoClient, RawClient, wait_until


class Recorder(Hook):
    """Allows everything; records what it saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        self.calls.append(("authenticate", client, username, password))
        return True

    def on_connect(self, client: ClientInfo) -> None:
        self.calls.append(("connect", client.client_id))

    def on_disconnect(self, client: ClientInfo, reason: str) -> None:
        self.calls.append(("disconnect", client.client_id, reason))

    def on_subscribe(self, client: ClientInfo, topic_filter: str, qos: int) -> None:
        self.calls.append(("subscribe", client.client_id, topic_filter, qos))

    def on_unsubscribe(self, client: ClientInfo, topic_filter: str) -> None:
        self.calls.append(("unsubscribe", client.client_id, topic_filter))

    def on_session_expired(self, client_id: str) -> None:
        self.calls.append(("expired", client_id))

    def on_message_dropped(self, session: str | None, message: Message, reason: str) -> None:
        self.calls.append(("dropped", session, message.payload, reason))

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [call for call in self.calls if call[0] == name]


class Password(Hook):
    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        return (username, password) == ("alice", b"secret")


class DenyTopics(Hook):
    """Refuses reading or writing topics (or filters) that start with ``prefix``."""

    def __init__(self, prefix: str, access: Access) -> None:
        self.prefix = prefix
        self.access = access

    def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
        return not (access is self.access and topic.startswith(self.prefix))


class Raises(Hook):
    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        raise RuntimeError("auth backend down")

    def on_publish(self, client: ClientInfo, message: Message) -> Message | None:
        raise RuntimeError("rewriter broken")

    def on_connect(self, client: ClientInfo) -> None:
        raise RuntimeError("listener broken")


def test_client_info_and_events(make_broker: BrokerFactory) -> None:
    recorder = Recorder()
    broker = make_broker(hooks=[recorder], session_expiry=1)
    raw = RawClient(broker.address, version=5)
    raw.connect(client_id="c1", username="u", password=b"p",
                properties=Properties(session_expiry_interval=1))
    [(_, info, username, password)] = recorder.named("authenticate")
    assert isinstance(info, ClientInfo)
    assert (info.client_id, info.protocol_version, info.username) == ("c1", 5, "u")
    assert info.listener == f"tcp:{broker.address[1]}"
    assert info.peer.startswith("127.0.0.1:")
    assert (username, password) == ("u", b"p")
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="a/#", qos=1)]))
    assert raw.receive() == Suback(packet_id=1, reason_codes=[1])
    raw.send(Subscribe(packet_id=2, subscriptions=[Subscription(topic_filter="a/#", qos=1)]))
    raw.receive()
    raw.close()
    wait_until(lambda: bool(recorder.named("expired")), what="the session to expire")
    assert recorder.named("connect") == [("connect", "c1")]
    assert recorder.named("subscribe") == [("subscribe", "c1", "a/#", 1)] * 2
    assert recorder.named("disconnect")[0][:2] == ("disconnect", "c1")
    assert recorder.named("expired") == [("expired", "c1")]


class ReadChecks(Hook):
    """Allows everything; records who each READ check was for."""

    def __init__(self) -> None:
        self.readers: list[ClientInfo] = []

    def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
        if access is Access.READ:
            self.readers.append(client)
        return True


def test_an_anonymous_clients_info_online_and_offline(make_broker: BrokerFactory) -> None:
    """An anonymous connection keeps no ClientInfo of its own (it is built when a hook asks),
    yet hooks see the same who, and a persistent session's deliveries queued while it is
    offline are checked as its last connection: its listener and peer."""
    checks = ReadChecks()
    broker = make_broker(hooks=[checks])
    sub = RawClient(broker.address)
    sub.connect(client_id="anon", clean_start=False)
    sub.subscribe("t", qos=1)
    pub = PahoClient(broker.address, client_id="pub")
    pub.connect()
    pub.publish("t", b"online", qos=1)
    assert sub.take(1) == [b"online"]
    peer = sub.sock.getsockname()
    sub.close()
    wait_until(lambda: broker.core.sessions["anon"].connection is None,
               what="the session to go offline")
    pub.publish("t", b"offline", qos=1)
    # One check for the SUBSCRIBE, one for each delivery.
    wait_until(lambda: len(checks.readers) == 3, what="the offline delivery's check")
    subscribing, online, offline = checks.readers
    assert subscribing == online == offline
    assert (offline.client_id, offline.username, offline.protocol_version) == ("anon", None, 4)
    assert offline.listener == f"tcp:{broker.address[1]}"
    assert offline.peer == f"{peer[0]}:{peer[1]}"


def test_unsubscribe_and_dropped_events(make_broker: BrokerFactory) -> None:
    recorder = Recorder()
    broker = make_broker(hooks=[recorder], max_memory_queued_messages=1,
                         queue_overflow="drop-newest")
    sub = RawClient(broker.address)
    sub.connect(client_id="slow", clean_start=False)
    sub.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="q", qos=1)]))
    sub.receive()
    sub.close()
    wait_until(lambda: bool(recorder.named("disconnect")))
    pub = PahoClient(broker.address, client_id="pub")
    pub.connect()
    pub.publish("q", b"kept", qos=1)
    pub.publish("q", b"dropped", qos=1)
    wait_until(lambda: bool(recorder.named("dropped")))
    assert recorder.named("dropped") == [
        ("dropped", "slow", b"dropped", "queue full, dropped the newest message")]
    again = RawClient(broker.address)
    again.connect(client_id="slow", clean_start=False)
    again.receive()  # the kept message
    again.send(Unsubscribe(packet_id=3, topic_filters=["q"]))
    again.receive()
    assert recorder.named("unsubscribe") == [("unsubscribe", "slow", "q")]


@pytest.mark.parametrize("version,code", [(4, ConnackReturnCode.NOT_AUTHORIZED),
                                          (5, ReasonCode.NOT_AUTHORIZED)])
def test_authentication_refused(make_broker: BrokerFactory, version: int, code: int) -> None:
    broker = make_broker(hooks=[Password()])
    raw = RawClient(broker.address, version=version)
    raw.send(Connect(client_id="mallory", protocol_version=version, username="alice",
                     password=b"guess"))
    assert raw.expect_closed() == [Connack(reason_code=code)]
    assert "mallory" not in broker.core.sessions
    ok = RawClient(broker.address, version=version)
    assert ok.connect(client_id="alice-1", username="alice", password=b"secret").reason_code == 0


def test_first_refusal_wins_and_later_hooks_are_not_asked(make_broker: BrokerFactory) -> None:
    after = Recorder()
    broker = make_broker(hooks=[Password(), after])
    raw = RawClient(broker.address)
    raw.send(Connect(client_id="x", username="bob", password=b"x"))
    assert raw.expect_closed() == [Connack(reason_code=ConnackReturnCode.NOT_AUTHORIZED)]
    assert after.named("authenticate") == []
    RawClient(broker.address).connect(client_id="y", username="alice", password=b"secret")
    assert len(after.named("authenticate")) == 1


def test_a_hook_that_raises_refuses_and_is_logged(make_broker: BrokerFactory,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    broker = make_broker(hooks=[Raises()])
    with caplog.at_level(logging.ERROR, logger="mqlite.broker"):
        raw = RawClient(broker.address, version=5)
        raw.send(Connect(client_id="x", protocol_version=5))
        assert raw.expect_closed() == [Connack(reason_code=ReasonCode.NOT_AUTHORIZED)]
    assert any("Raises.on_connect_authenticate" in r.getMessage() for r in caplog.records)


class AllowAll(Hook):
    pass


def test_a_raising_rewriter_leaves_the_message_unchanged(make_broker: BrokerFactory) -> None:
    class RaisesAfterAuth(Raises):
        def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                    password: bytes | None) -> bool:
            return True

    broker = make_broker(hooks=[RaisesAfterAuth()])
    client = PahoClient(broker.address, client_id="c")
    client.connect()  # on_connect raised: logged, the connection goes on
    client.subscribe("t", qos=1)
    client.publish("t", b"as sent", qos=1)
    assert client.message().payload == b"as sent"


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_refused(make_broker: BrokerFactory, version: int) -> None:
    broker = make_broker(hooks=[DenyTopics("secret", Access.READ)])
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id="c")
    raw.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="secret/#"),
                                                   Subscription(topic_filter="open/#")]))
    refused = ReasonCode.NOT_AUTHORIZED if version == 5 else 0x80
    assert raw.receive() == Suback(packet_id=1, reason_codes=[refused, 0])


@pytest.mark.parametrize("version", [4, 5])
def test_publish_refused(make_broker: BrokerFactory, version: int) -> None:
    broker = make_broker(hooks=[DenyTopics("locked", Access.WRITE)])
    watcher = PahoClient(broker.address, client_id="watcher", version=5)
    watcher.connect()
    watcher.subscribe("#", qos=2)
    raw = RawClient(broker.address, version=version)
    raw.connect(client_id="writer")
    code = ReasonCode.NOT_AUTHORIZED if version == 5 else 0
    raw.send(Publish(topic="locked/a", payload=b"0", qos=0))
    raw.send(Publish(topic="locked/a", payload=b"1", qos=1, packet_id=1))
    assert raw.receive() == Puback(packet_id=1, reason_code=code)
    raw.send(Publish(topic="locked/a", payload=b"2", qos=2, packet_id=2, retain=True))
    assert raw.receive() == Pubrec(packet_id=2, reason_code=code)
    raw.send(Publish(topic="open/a", payload=b"ok", qos=1, packet_id=3))
    raw.receive()
    assert watcher.message().payload == b"ok"  # none of the refused ones before it
    watcher.no_message()
    assert not broker.core.retained.matching("locked/#", 0.0)


@pytest.mark.parametrize("version,code", [(4, ConnackReturnCode.NOT_AUTHORIZED),
                                          (5, ReasonCode.NOT_AUTHORIZED)])
def test_will_refused(make_broker: BrokerFactory, version: int, code: int) -> None:
    broker = make_broker(hooks=[DenyTopics("locked", Access.WRITE)])
    raw = RawClient(broker.address, version=version)
    raw.send(Connect(client_id="w", protocol_version=version,
                     will=Will(topic="locked/will", payload=b"bye")))
    assert raw.expect_closed() == [Connack(reason_code=code)]


class OnlyAdminReadsAlarms(Hook):
    def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
        return access is Access.WRITE or not topic.startswith("alarm") \
            or client.client_id == "admin"


@pytest.mark.parametrize("version", [4, 5])
def test_delivery_refused_is_skipped(make_broker: BrokerFactory, version: int) -> None:
    broker = make_broker(hooks=[OnlyAdminReadsAlarms()])
    admin = PahoClient(broker.address, client_id="admin", version=version)
    user = PahoClient(broker.address, client_id="user", version=version)
    for client in (admin, user):
        client.connect()
        assert client.subscribe("#", qos=1) == [1]  # the filter itself is allowed
    admin.publish("alarm/fire", b"!", qos=1)
    admin.publish("news", b"n", qos=1)
    assert admin.message().payload == b"!"
    assert user.message().payload == b"n"
    user.no_message()


@pytest.mark.parametrize("version", [4, 5])
def test_retained_refused_on_subscribe(make_broker: BrokerFactory, version: int) -> None:
    broker = make_broker(hooks=[OnlyAdminReadsAlarms()])
    admin = PahoClient(broker.address, client_id="admin", version=version)
    admin.connect()
    for topic in ("alarm/door", "news/today"):
        admin.publish(topic, b"retained " + topic.encode(), qos=1, retain=True)
    assert admin.subscribe("#", qos=1) == [1]
    assert sorted(admin.message().topic for _ in range(2)) == ["alarm/door", "news/today"]
    user = RawClient(broker.address, version=version)
    user.connect(client_id="user")
    assert user.subscribe("#", qos=1).reason_codes == [1]
    got = user.receive()
    assert isinstance(got, Publish) and got.topic == "news/today" and got.retain
    user.ping()  # alarm/door never came


def test_on_publish_rewrites_and_drops(make_broker: BrokerFactory) -> None:
    class Rewrite(Hook):
        def on_publish(self, client: ClientInfo, message: Message) -> Message | None:
            if message.topic == "drop":
                return None
            return replace(message, topic=f"from/{client.client_id}/{message.topic}")

    broker = make_broker(hooks=[Rewrite(), AllowAll()])
    client = PahoClient(broker.address, client_id="dev", version=5)
    client.connect()
    client.subscribe("from/#", qos=1)
    client.subscribe("drop", qos=1)
    assert client.publish("drop", b"gone", qos=1) == ReasonCode.NO_MATCHING_SUBSCRIBERS
    client.publish("temp", b"21", qos=1)
    message = client.message()
    assert (message.topic, message.payload) == ("from/dev/temp", b"21")
    client.no_message()


def test_hooks_must_be_hooks() -> None:
    with pytest.raises(TypeError, match="Hook instances"):
        Broker(port=0, hooks=[object()])  # type: ignore[list-item]
