"""paho-mqtt's own client test suite run against ``mqlite.client``.

The suite comes from paho-mqtt's source distribution on PyPI (its ``tests/`` folder), and runs
unchanged: a package named ``paho`` put first on the path only maps module names
(``paho.mqtt.client`` is ``mqlite.client``, ``paho.mqtt.properties`` is
``mqlite.client.properties``, and so on). paho's test certificates are made afresh with its own
``tests/ssl/gen.sh``. ``test_mqttv5.py`` needs paho's test broker (paho.mqtt.testing, not on
PyPI): a module of that name starts mqlite's broker in its place.

    python -m tests.interop.paho_suite [--keep]   # the tally; exit 1 on an unexpected failure
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

PAHO_VERSION = "2.2.0"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "paho-suite"
# paho.mqtt.X -> mqlite.client.X ("" is the package itself)
MODULES = ("client", "enums", "exception", "properties", "reasoncodes", "packettypes",
           "subscribeoptions", "publish", "subscribe", "matcher")
# Tests of paho's private internals, which a drop-in need not pass (a collection error
# counts as one test: the module imports a private name).
PRIVATE = {
    "tests/test_packet.py": "imports paho's private _packet module",
    "tests/test_websockets.py": "drives paho's private _WebsocketWrapper",
    "tests/test_mqttv5.py::TestBrokerRebootsTopicAliiQoS0::"
    "test_qos0_client_reconnects_after_broker_reboots":
        "replaces paho's private _do_on_publish under its private mutexes",
    "tests/test_mqttv5.py::TestBrokerRebootsTopicAliiQoS1::"
    "test_qos1_client_reconnects_after_broker_reboots":
        "replaces paho's private _do_on_publish under its private mutexes",
    "tests/test_mqttv5.py::TestDropOutMessagesWorkAround::"
    "test_qos1_drop_messages_client_reconnects_after_broker_reboots":
        "replaces paho's private _do_on_publish under its private mutexes",
}
# Where mqlite differs on purpose (the README's client section says so), by test name prefix.
DIFFERENCES = {
    "tests/test_client.py::TestPublishBroker2Client::test_invalid_utf8_topic":
        "an ill-formed UTF-8 topic closes the connection (MQTT-1.5.4-1); paho delivers it",
    "tests/test_client.py::TestPublish::test_publish_before_connect":
        "asserts that connect() before loop_start() opens two TCP connections, which the "
        "test's own comment calls a bug",
    "tests/test_websocket_integration.py::TestValidHeaders":
        "the fake server answers with subprotocol 'chat', which mqlite did not offer: RFC "
        "6455 4.1 says the client must fail the connection, paho ignores it",
    "tests/test_client.py::Test_connect_v5::test_broker_disconnect_reason[tcp--None-None-"
    "CallbackAPIVersion.VERSION1]":
        "a DISCONNECT without a reason code reaches a VERSION1 on_disconnect as 0 (Normal "
        "disconnection), where paho passes None",
    "tests/test_client.py::Test_connect_v5::test_broker_disconnect_reason[unix--None-None-"
    "CallbackAPIVersion.VERSION1]":
        "a DISCONNECT without a reason code reaches a VERSION1 on_disconnect as 0 (Normal "
        "disconnection), where paho passes None",
    "tests/test_mqttv5.py::Test::test_server_topic_alias":
        "mqlite resolves the broker's topic aliases (message.topic is the topic); paho "
        "hands the application an empty topic",
    "tests/test_mqttv5.py::Test::test_subscribe_failure":
        "a broker difference, not the client's: paho's test broker refuses with 0x80, "
        "mqlite's broker with 0x87 (Not authorized), and the client reports what it got",
}


def expected(test: str) -> str | None:
    """Why ``test`` is allowed to fail, if it is."""
    for known in (PRIVATE, DIFFERENCES):
        for name, why in known.items():
            if test == name or test.startswith(name):
                return why
    return None


_TEST_BROKER = '''\
"""paho.mqtt.testing's broker API, served by mqlite's broker (test_mqttv5.py starts it)."""
import threading

from mqlite.broker import Access, Broker, Hook


class _Server:
    def __init__(self):
        self.socket = None
        self._broker = None
        self._stopped = threading.Event()

    def shutdown(self):
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    def server_close(self):
        pass  # shutdown() closed the listener


class _Socket:
    def __init__(self, address):
        self._address = address

    def getsockname(self):
        return self._address


class TCPListeners:
    server = None


class listeners:  # noqa: N801  (the module's name in paho.mqtt.testing)
    TCPListeners = TCPListeners


class _NoSubscribe(Hook):
    """paho's test broker refuses subscriptions to test/nosubscribe (test_subscribe_failure)."""

    def on_acl_check(self, client, topic, access):
        return not (access == Access.READ and topic == "test/nosubscribe")


def run(config=None):
    port = 0
    for line in config or ():  # "listener PORT"
        if line.startswith("listener "):
            port = int(line.split()[1])
    server = _Server()
    broker = Broker(host="127.0.0.1", port=port, sys_interval=0, hooks=[_NoSubscribe()])
    server._broker = broker
    broker.start()
    server.socket = _Socket(broker.address)
    TCPListeners.server = server
'''


@dataclass
class Tally:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.passed) + len(self.failed) + len(self.skipped)

    @property
    def unexpected(self) -> list[str]:
        return [test for test in self.failed if expected(test) is None]

    @property
    def private(self) -> list[str]:
        return [test for test in self.failed if any(test.startswith(name) for name in PRIVATE)]


def source(directory: Path) -> Path:
    """paho's source distribution, unpacked (downloaded once into ``directory``)."""
    unpacked = directory / f"paho_mqtt-{PAHO_VERSION}"
    if (unpacked / "tests").is_dir():
        return unpacked
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"paho_mqtt-{PAHO_VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "--dest", str(directory),
                        f"paho-mqtt=={PAHO_VERSION}"], check=True, timeout=300)
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    return unpacked


def prepare(paho: Path, work: Path) -> tuple[Path, Path]:
    """A copy of paho's tests with fresh certificates, and the name-mapping package."""
    tests = work / "suite"
    shutil.copytree(paho / "tests", tests / "tests")
    shutil.copy(paho / "pyproject.toml", tests / "pyproject.toml")
    subprocess.run(["sh", "gen.sh"], cwd=tests / "tests" / "ssl", check=True,
                   capture_output=True, timeout=300)
    shim = work / "shim"
    (shim / "paho" / "mqtt").mkdir(parents=True)
    (shim / "paho" / "__init__.py").write_text("")
    (shim / "paho" / "mqtt" / "__init__.py").write_text(
        "from mqlite.client import __version__ as __version__\n"
        "from mqlite.client import MQTTException as MQTTException\n")
    for name in MODULES:
        (shim / "paho" / "mqtt" / f"{name}.py").write_text(
            f"import sys\nimport mqlite.client.{name}\n"
            f"sys.modules[__name__] = sys.modules['mqlite.client.{name}']\n"
            if name != "client" else
            "import sys\nimport mqlite.client\nsys.modules[__name__] = mqlite.client\n")
    testing = tests / "paho.mqtt.testing" / "interoperability" / "mqtt" / "brokers"
    testing.mkdir(parents=True)
    (testing.parent / "__init__.py").write_text("")
    (testing / "__init__.py").write_text(_TEST_BROKER)
    return tests, shim


def run(keep: bool = False, extra: list[str] | None = None, reference: bool = False) -> Tally:
    """``reference``: run the suite against paho-mqtt itself (installed), for comparison."""
    with tempfile.TemporaryDirectory(prefix="paho-suite-") as temp:
        work = Path(temp)
        tests, shim = prepare(source(CACHE), work)
        report = work / "report.xml"
        # The shim first; the suite's root, so that its client scripts import "tests".
        path = f"{tests}" if reference else f"{shim}{os.pathsep}{tests}"
        env = {**os.environ, "PYTHONPATH": path,
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("CI", None)  # paho's tests, not ours
        subprocess.run([sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider",
                        "-p", "no:mqlite", "-q", "--continue-on-collection-errors",
                        f"--junitxml={report}", "-o",
                        "junit_family=xunit2", *(extra or [])],
                       cwd=tests, env=env, timeout=1800, check=False)
        tally = _read(report)
        if keep:
            shutil.copytree(work, CACHE / "last-run", dirs_exist_ok=True)
    return tally


def _read(report: Path) -> Tally:
    """One outcome per test (a test that failed and then errored at teardown is listed twice
    in the report); a module that failed to import is one test named by its path."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        classname, test = case.get("classname", ""), case.get("name", "")
        if classname:
            parts = classname.split(".")
            modules = [p for p in parts if not p[:1].isupper()]
            classes = [p for p in parts if p[:1].isupper()]
            name = "/".join(modules) + ".py::" + "::".join([*classes, test])
        else:  # a collection error: name is the module's dotted path
            name = test.replace(".", "/") + ".py"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        if outcomes.get(name) != "failed":
            outcomes[name] = outcome
    tally = Tally()
    for name, outcome in outcomes.items():
        getattr(tally, outcome).append(name)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the run under .cache/")
    parser.add_argument("--json", action="store_true", help="the tally as JSON")
    parser.add_argument("--reference", action="store_true",
                        help="run the suite against paho-mqtt itself, for comparison")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest")
    args = parser.parse_args()
    tally = run(args.keep, args.pytest_args, args.reference)
    if args.reference:
        print(f"paho-mqtt {PAHO_VERSION}'s client tests against paho-mqtt itself: "
              f"{len(tally.passed)} of {tally.total} passed, {len(tally.failed)} failed, "
              f"{len(tally.skipped)} skipped")
        for test in tally.failed:
            print(f"  failed: {test}")
        return 1 if tally.failed else 0
    if args.json:
        print(json.dumps({"passed": tally.passed, "failed": tally.failed,
                          "skipped": tally.skipped}, indent=1))
    print(f"paho-mqtt {PAHO_VERSION}'s client tests against mqlite.client: "
          f"{len(tally.passed)} of {tally.total} passed, {len(tally.failed)} failed "
          f"({len(tally.private)} test paho's private internals, "
          f"{len(tally.failed) - len(tally.private) - len(tally.unexpected)} meet a deliberate "
          f"difference), {len(tally.skipped)} skipped")
    for test in tally.unexpected:
        print(f"  unexpected failure: {test}")
    return 1 if tally.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
