"""mosquitto_pub and mosquitto_sub (Debian's mosquitto-clients) against the broker."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from mqlite.broker import Broker

from ..broker.helpers import PahoClient

if not shutil.which("mosquitto_pub"):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs mosquitto-clients installed (see .ci/run)")
    pytest.skip("mosquitto-clients is not installed", allow_module_level=True)


def _sub(broker: Broker, *args: str) -> subprocess.Popen[str]:
    host, port = broker.address
    return subprocess.Popen(["mosquitto_sub", "-h", host, "-p", str(port), "-v", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _pub(broker: Broker, *args: str) -> None:
    host, port = broker.address
    subprocess.run(["mosquitto_pub", "-h", host, "-p", str(port), *args], check=True,
                   timeout=10)


def _wait_subscribed(broker: Broker, count: int = 1) -> None:
    from ..broker.helpers import wait_until
    wait_until(lambda: sum(len(s.subscriptions) for s in broker.core.sessions.values())
               >= count, what="mosquitto_sub to subscribe")


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_pub_sub(broker: Broker, version: str, qos: str) -> None:
    sub = _sub(broker, "-V", version, "-q", qos, "-t", "home/+/temp", "-C", "3")
    _wait_subscribed(broker)
    for room in ("kitchen", "hall", "attic"):
        _pub(broker, "-V", version, "-q", qos, "-t", f"home/{room}/temp", "-m", room)
    out, err = sub.communicate(timeout=10)
    assert out.splitlines() == ["home/kitchen/temp kitchen", "home/hall/temp hall",
                                "home/attic/temp attic"], err


def test_retained_with_mosquitto(broker: Broker) -> None:
    _pub(broker, "-t", "config/mode", "-m", "eco", "-r", "-q", "1")
    out = subprocess.run(["mosquitto_sub", "-h", broker.address[0], "-p",
                          str(broker.address[1]), "-t", "config/#", "-C", "1", "-v"],
                         capture_output=True, text=True, timeout=10).stdout
    assert out.strip() == "config/mode eco"


def test_mosquitto_pub_to_paho_v5_with_user_properties(broker: Broker) -> None:
    client = PahoClient(broker.address, client_id="paho", version=5)
    client.connect()
    client.subscribe("props", qos=1)
    _pub(broker, "-V", "mqttv5", "-q", "1", "-t", "props", "-m", "x",
         "-D", "publish", "user-property", "origin", "mosquitto",
         "-D", "publish", "content-type", "text/plain")
    message = client.message()
    assert message.properties.UserProperty == [("origin", "mosquitto")]
    assert message.properties.ContentType == "text/plain"


def test_persistent_mosquitto_sub_gets_what_it_missed(broker: Broker) -> None:
    host, port = str(broker.address[0]), str(broker.address[1])
    first = _sub(broker, "-i", "keeper", "-c", "-q", "1", "-t", "missed/#", "-C", "1")
    _wait_subscribed(broker)
    _pub(broker, "-q", "1", "-t", "missed/0", "-m", "0")
    first.communicate(timeout=10)
    for i in (1, 2):
        _pub(broker, "-q", "1", "-t", f"missed/{i}", "-m", str(i))
    out = subprocess.run(["mosquitto_sub", "-h", host, "-p", port, "-i", "keeper", "-c",
                          "-q", "1", "-t", "missed/#", "-C", "2", "-v"],
                         capture_output=True, text=True, timeout=10).stdout
    assert out.splitlines() == ["missed/1 1", "missed/2 2"]
