"""One ACL file and one password file used unchanged by mosquitto and by mqlite, and the same
33 (client, user, topic, action) cases run against both: the results, judged by what is
actually delivered, must be the same. (SUBACK codes may differ: mqlite refuses a filter no
read rule can match, mosquitto 2.0 grants it; the README says so.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mqlite.protocol import Publish, Subscribe, Subscription

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess
from ..interop.mosquitto import require_mosquitto, start_mosquitto

pytestmark = pytest.mark.slow

ACL = """\
# anonymous clients
topic read public/#
user alice
topic readwrite alice/#
topic read shared/#
topic deny shared/secret
user bob
topic write shared/#
topic read bob/+
user admin
topic readwrite #
pattern readwrite clients/%c/#
pattern read users/%u/inbox
"""
USERS = {"alice": "a-pw", "bob": "b-pw", "admin": "admin-pw"}
# (client id, user or None, filter to subscribe to, topic the admin publishes on)
READS = [
    ("r1", None, "public/news", "public/news"),
    ("r2", None, "public/#", "public/deep/x"),
    ("r3", None, "alice/x", "alice/x"),
    ("r4", "alice", "alice/x", "alice/x"),
    ("r5", "alice", "alice/#", "alice/a/b"),
    ("r6", "alice", "shared/open", "shared/open"),
    ("r7", "alice", "shared/secret", "shared/secret"),
    ("r8", "alice", "shared/#", "shared/secret"),
    ("r9", "alice", "public/news", "public/news"),
    ("r10", "bob", "bob/one", "bob/one"),
    ("r11", "bob", "bob/one/two", "bob/one/two"),
    ("r12", "bob", "shared/open", "shared/open"),
    ("r13", "bob", "#", "bob/x"),
    ("r14", "alice", "users/alice/inbox", "users/alice/inbox"),
    ("r15", "alice", "users/bob/inbox", "users/bob/inbox"),
    ("r16", None, "clients/r16/x", "clients/r16/x"),
    ("r17", None, "clients/other/x", "clients/other/x"),
    # Shared subscriptions: checked on the filter within them.
    ("r18", "alice", "$share/g/shared/open", "shared/open"),
    ("r19", "alice", "$share/g/shared/secret", "shared/secret"),
    ("r20", None, "$share/g/public/#", "public/x"),
]
# (client id, user or None, topic it publishes on)
WRITES = [
    ("w1", None, "public/news"),
    ("w2", None, "clients/w2/data"),
    ("w3", None, "clients/w9/data"),
    ("w4", "alice", "alice/x"),
    ("w5", "alice", "shared/open"),
    ("w6", "bob", "shared/open"),
    ("w7", "bob", "shared/secret"),
    ("w8", "bob", "bob/x"),
    ("w9", "admin", "anything/at/all"),
    ("w10", "alice", "users/alice/inbox"),
    ("w11", "bob", "clients/w11/x"),
    ("w12", "alice", "bob/x"),
    ("w13", None, "alice/x"),
]


def connect(address: tuple[str, int], client_id: str, user: str | None) -> RawClient:
    client = RawClient(address)
    password = USERS[user].encode() if user else None
    assert client.connect(client_id=client_id, username=user,
                          password=password).reason_code == 0
    return client


def subscribe(client: RawClient, *filters: str) -> None:
    client.send(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter=f, qos=0)
                                                      for f in filters]))
    client.receive()  # the SUBACK, whatever its codes


def topics_until_sentinel(client: RawClient, sentinel: str) -> list[str]:
    topics = []
    while True:
        packet = client.receive()
        if isinstance(packet, Publish):
            if packet.topic == sentinel:
                return topics
            topics.append(packet.topic)


def run_cases(address: tuple[str, int]) -> list[bool]:
    results = []
    admin = connect(address, "admin-watch", "admin")
    subscribe(admin, "#")
    for client_id, user, topic_filter, topic in READS:
        client = connect(address, client_id, user)
        sentinel = f"clients/{client_id}/sentinel"  # readable by the pattern rule
        subscribe(client, topic_filter, sentinel)
        sender = connect(address, f"admin-{client_id}", "admin")
        sender.send(Publish(topic=topic, payload=b"case"))
        sender.send(Publish(topic=sentinel, payload=b"end"))
        results.append(topic in topics_until_sentinel(client, sentinel))
        sender.close()
        client.close()
    for client_id, user, topic in WRITES:
        client = connect(address, client_id, user)
        sentinel = f"clients/{client_id}/sentinel"  # writable by the pattern rule
        client.send(Publish(topic=topic, payload=b"case"))
        client.send(Publish(topic=sentinel, payload=b"end"))
        seen = topics_until_sentinel(admin, sentinel)
        results.append(topic in seen)
        client.close()
    return results


def test_the_same_acl_gives_the_same_deliveries_in_both(tmp_path: Path) -> None:
    require_mosquitto()
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    passwords = tmp_path / "passwd"
    for user, password in USERS.items():
        flags = ["-b"] if passwords.exists() else ["-c", "-b"]
        subprocess.run(["mosquitto_passwd", *flags, str(passwords), user, password],
                       check=True, capture_output=True, timeout=10)
    passwords.chmod(0o600)
    acl.chmod(0o600)
    mosquitto, port = start_mosquitto(tmp_path, f"user root\npassword_file {passwords}\n"
                                                f"acl_file {acl}\n")
    config = tmp_path / "mosquitto.conf"  # the file mosquitto runs with, used unchanged
    try:
        theirs = run_cases(("127.0.0.1", port))
    finally:
        mosquitto.terminate()
        mosquitto.wait(10)
    with BrokerProcess("-c", str(config)) as broker:
        ours = run_cases(broker.address)
        broker.terminate()
    cases = [c[:3] for c in READS] + list(WRITES)
    assert len(cases) == 33
    differences = [(case, mine, reference)
                   for case, mine, reference in zip(cases, ours, theirs, strict=True)
                   if mine != reference]
    assert differences == [], differences
    assert any(theirs) and not all(theirs), "the cases must tell allowed from refused"
