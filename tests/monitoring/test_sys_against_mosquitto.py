"""The $SYS tree against mosquitto's: the same traffic on both brokers, everything under
$SYS/# collected from each, the topic sets compared. The differences are the ones the README
lists: mosquitto's heap/* (a build with memory tracking) is not published, mqlite adds its own
numbers under $SYS/broker/mqlite/."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqlite.broker import Broker

from ..broker.helpers import PahoClient
from ..interop.mosquitto import require_mosquitto, start_mosquitto

pytestmark = pytest.mark.slow

require_mosquitto()

def sys_topics(address: tuple[str, int]) -> dict[str, bytes]:
    """Traffic (a persistent subscriber, retained and plain messages), then every $SYS topic
    of three publication rounds."""
    worker = PahoClient(address, client_id="worker", clean=False)
    worker.connect()
    worker.subscribe("work/#", qos=1)
    worker.subscribe("$share/group/shared/#", qos=1)
    for number in range(5):
        worker.publish("work/item", b"%d" % number, qos=1, retain=number == 0)
    for _ in range(5):
        worker.message()
    watcher = PahoClient(address, client_id="watcher")
    watcher.connect()
    watcher.subscribe("$SYS/#")
    topics: dict[str, bytes] = {}
    uptimes = 0
    # uptime changes every round, so each round publishes it: four of them bracket three
    # whole rounds (mosquitto publishes only what changed; loads from its second round).
    while uptimes < 4:
        message = watcher.message(timeout=10)
        topics[message.topic] = message.payload
        uptimes += message.topic == "$SYS/broker/uptime"
    watcher.disconnect()
    worker.disconnect()
    return topics


def test_the_sys_tree_has_mosquittos_names(tmp_path: Path) -> None:
    process, port = start_mosquitto(tmp_path, "sys_interval 1\n")
    try:
        theirs = sys_topics(("127.0.0.1", port))
    finally:
        process.terminate()
        process.wait(10)
    with Broker(port=0, sys_interval=0.5) as broker:
        ours = sys_topics(broker.address)
    missing = {topic for topic in theirs if topic not in ours}
    assert missing <= {"$SYS/broker/heap/current", "$SYS/broker/heap/maximum"}, missing
    extra = {topic for topic in ours if topic not in theirs}
    assert all(topic.startswith("$SYS/broker/mqlite/") for topic in extra), extra
    for name in ("clients/connected", "subscriptions/count", "retained messages/count",
                 "publish/messages/received", "shared_subscriptions/count"):
        assert f"$SYS/broker/{name}" in ours
    assert int(ours["$SYS/broker/shared_subscriptions/count"]) == 1
    assert int(ours["$SYS/broker/publish/messages/received"]) >= 5
    assert ours["$SYS/broker/uptime"].endswith(b" seconds")
