"""``mqlite pub`` / ``mqlite sub`` side by side with mosquitto_pub / mosquitto_sub: same flags,
same output, same exit codes, so shell scripts switch over."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from mqlite.broker import Broker
from mqlite.broker.config.listener_config import ListenerConfig

from ..broker.helpers import wait_until

if not shutil.which("mosquitto_pub"):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs mosquitto-clients installed (see .ci/run)")
    pytest.skip("mosquitto-clients is not installed", allow_module_level=True)

MQLITE = [sys.executable, "-m", "mqlite.cli"]


def tool(kind: str, name: str) -> list[str]:
    return [f"mosquitto_{name}"] if kind == "mosquitto" else [*MQLITE, name]


def address(broker: Broker) -> list[str]:
    host, port = broker.address
    return ["-h", host, "-p", str(port)]


def subscriptions(broker: Broker) -> int:
    return sum(len(s.subscriptions) for s in broker.core.sessions.values())


@pytest.mark.parametrize("version", ["311", "5"])
def test_both_subscribers_print_the_same(broker: Broker, version: str) -> None:
    args = ["-V", version, "-q", "1", "-t", "cli/+", "-t", "other", "-C", "4", "-v"]
    subs = {kind: subprocess.Popen([*tool(kind, "sub"), *address(broker), *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for kind in ("mosquitto", "mqlite")}
    wait_until(lambda: subscriptions(broker) >= 4, what="both subscribers")
    subprocess.run([*tool("mqlite", "pub"), *address(broker), "-V", version, "-q", "2",
                    "-t", "cli/lines", "-l"], input=b"first\nsecond line\n", check=True,
                   timeout=30)
    subprocess.run([*tool("mqlite", "pub"), *address(broker), "-t", "other", "-n", "-r"],
                   check=True, timeout=30)
    subprocess.run([*tool("mosquitto", "pub"), *address(broker), "-t", "cli/m", "-m", "mm"],
                   check=True, timeout=30)
    outputs = {kind: sub.communicate(timeout=30)[0] for kind, sub in subs.items()}
    assert outputs["mosquitto"] == (b"cli/lines first\ncli/lines second line\n"
                                     b"other (null)\ncli/m mm\n")
    assert outputs["mqlite"] == outputs["mosquitto"]


def test_file_payload_and_retained(broker: Broker, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "payload.bin")
    with open(path, "wb") as handle:
        handle.write(b"\x00binary\xff")
    subprocess.run([*tool("mqlite", "pub"), *address(broker), "-t", "cli/file", "-f", path,
                    "-r", "-q", "1"], check=True, timeout=30)
    result = subprocess.run([*tool("mqlite", "sub"), *address(broker), "-t", "cli/file",
                             "-C", "1"], capture_output=True, timeout=30)
    assert result.stdout == b"\x00binary\xff\n"


@pytest.mark.parametrize("kind", ["mosquitto", "mqlite"])
def test_exit_codes_match(broker: Broker, kind: str) -> None:
    timed_out = subprocess.run([*tool(kind, "sub"), *address(broker), "-t", "none", "-W", "1"],
                               capture_output=True, text=True, timeout=30)
    assert timed_out.returncode == 27 and "Timed out" in timed_out.stderr
    bad_qos = subprocess.run([*tool(kind, "pub"), *address(broker), "-t", "x", "-m", "y",
                              "-q", "3"], capture_output=True, text=True, timeout=30)
    assert bad_qos.returncode == 1 and "Invalid QoS given: 3" in bad_qos.stderr
    refused = subprocess.run([*tool(kind, "pub"), "-h", "127.0.0.1", "-p", "1", "-t", "x",
                              "-m", "y"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "Connection refused" in refused.stderr


@pytest.mark.parametrize(("version", "code", "text"), [
    ("311", 5, "Connection error: Connection Refused: not authorised."),
    ("5", 135, "Connection error: Not authorized")])
def test_a_refused_connection_exits_with_the_connack_code(version: str, code: int,
                                                          text: str) -> None:
    with Broker(port=0, allow_anonymous=False, sys_interval=0) as closed:
        for kind in ("mosquitto", "mqlite"):
            for name, extra in (("pub", ["-m", "y"]), ("sub", ["-C", "1"])):
                done = subprocess.run([*tool(kind, name), *address(closed), "-V", version,
                                       "-t", "x", *extra], capture_output=True, text=True,
                                      timeout=30)
                assert done.returncode == code, (kind, name, done.stderr)
                assert text in done.stderr, (kind, name, done.stderr)


FORMAT = r"%t|%q|%r|%l|%x|%X|%p|%5l|%-4q.|%03l|%C|%R|%E|%P\t@@"


def test_formats_properties_filters_and_flags_print_as_mosquitto_sub(broker: Broker) -> None:
    """-F with every message field, -D user and other properties, -T, -N, -R, -U, -x."""
    common = ["-V", "5", "-q", "1", "-t", "fmt/#", "-T", "fmt/hidden", "-C", "3", "-R",
              "-F", FORMAT, "-N", "-U", "fmt/old", "-x", "30"]
    subprocess.run([*tool("mqlite", "pub"), *address(broker), "-t", "fmt/stale", "-m", "old",
                    "-r"], check=True, timeout=30)
    subs = {kind: subprocess.Popen([*tool(kind, "sub"), *address(broker), *common,
                                    "-i", f"{kind}-fmt"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for kind in ("mosquitto", "mqlite")}
    wait_until(lambda: subscriptions(broker) >= 2, what="both subscribers")
    publish = [*tool("mqlite", "pub"), *address(broker), "-V", "5", "-q", "1"]
    subprocess.run([*publish, "-t", "fmt/hidden", "-m", "not shown"], check=True, timeout=30)
    subprocess.run([*publish, "-t", "fmt/a", "-m", "hello", "-D", "publish", "user-property",
                    "k", "v", "-D", "publish", "content-type", "text/plain", "-D", "publish",
                    "response-topic", "fmt/reply"], check=True, timeout=30)
    subprocess.run([*publish, "-t", "fmt/b", "-n", "-D", "publish",
                    "message-expiry-interval", "3600"], check=True, timeout=30)
    subprocess.run([*publish, "-t", "fmt/c", "-m", "\x01\xff"], check=True, timeout=30)
    outputs = {kind: sub.communicate(timeout=30) for kind, sub in subs.items()}
    assert b"fmt/a|1|0|5|68656c6c6f|68656C6C6F|hello|    5|1.|005|text/plain|fmt/reply" \
        in outputs["mosquitto"][0], outputs["mosquitto"]
    assert outputs["mqlite"][0] == outputs["mosquitto"][0], outputs


def test_tls_flags_and_a_url_as_mosquitto_clients_take_them(tmp_path: os.PathLike[str],
                                                            certificates: Any) -> None:
    listener = ListenerConfig(type="tls", port=0, certfile=str(certificates.server_cert),
                              keyfile=str(certificates.server_key),
                              cafile=str(certificates.ca), require_certificate=True)
    with Broker(listeners=[listener], sys_interval=0) as secure:
        port = str(secure.address[1])
        tls = ["--cafile", str(certificates.ca), "--cert", str(certificates.client_cert),
               "--key", str(certificates.client_key), "--tls-version", "tlsv1.2"]
        for kind in ("mosquitto", "mqlite"):
            done = subprocess.run([*tool(kind, "pub"), "-L",
                                   f"mqtts://localhost:{port}/tls/{kind}", "-m", kind, "-r",
                                   *tls], capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, (kind, done.stderr)
        got = subprocess.run([*tool("mqlite", "sub"), "-h", "localhost", "-p", port,
                              "-t", "tls/#", "-C", "2", "-v", *tls], capture_output=True,
                             timeout=30)
        assert sorted(got.stdout.splitlines()) == [b"tls/mosquitto mosquitto",
                                                    b"tls/mqlite mqlite"]
        bare = subprocess.run([*tool("mqlite", "pub"), "-h", "localhost", "-p", port, "-t",
                               "x", "-m", "y", "--cafile", str(certificates.ca)],
                              capture_output=True, text=True, timeout=30)
        assert bare.returncode == 1 and bare.stderr.startswith("Error:")


def test_debug_lines_and_a_websocket_url(tmp_path: os.PathLike[str]) -> None:
    listener = ListenerConfig(type="ws", port=0, path="/mqtt")
    with Broker(listeners=[listener], sys_interval=0) as web:
        port = web.address[1]
        done = subprocess.run([*tool("mqlite", "pub"), "-L", f"ws://127.0.0.1:{port}/w/t",
                               "-m", "over ws", "-q", "1", "-d", "-i", "dbg"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "Client dbg sending CONNECT" in done.stdout
        assert "Client dbg received CONNACK" in done.stdout
        assert "Client dbg sending PUBLISH (d0, q1, r0, m1), 'w/t', ... (7 bytes)" \
            in done.stdout


def test_request_response_like_mosquitto_rr(broker: Broker) -> None:
    """A responder answers each request on its Response Topic (with its Correlation Data, if
    it has one)."""
    import paho.mqtt.client as paho

    responder = paho.Client(paho.CallbackAPIVersion.VERSION2, "responder",
                            protocol=paho.MQTTv5)

    def answer(client: Any, userdata: Any, message: Any) -> None:
        properties = paho.Properties(paho.PacketTypes.PUBLISH)
        if hasattr(message.properties, "CorrelationData"):  # mosquitto_rr sends none
            properties.CorrelationData = message.properties.CorrelationData
        client.publish(message.properties.ResponseTopic, b"answer to " + message.payload, 1,
                       properties=properties)

    responder.on_message = answer
    responder.connect(*broker.address)
    responder.subscribe("rr/request", 1)
    responder.loop_start()
    try:
        wait_until(lambda: subscriptions(broker) >= 1, what="the responder")
        for kind in ("mosquitto", "mqlite"):
            done = subprocess.run([*tool(kind, "rr"), *address(broker), "-t", "rr/request",
                                   "-e", f"rr/response/{kind}", "-m", "ping", "-W", "10"],
                                  capture_output=True, timeout=30)
            assert (done.returncode, done.stdout) == (0, b"answer to ping\n"), done.stderr
        late = subprocess.run([*tool("mqlite", "rr"), *address(broker), "-t", "rr/nobody",
                               "-e", "rr/never", "-m", "x", "-W", "1"], capture_output=True,
                              text=True, timeout=30)
        assert late.returncode == 27 and "Timed out" in late.stderr
    finally:
        responder.disconnect()
        responder.loop_stop()
