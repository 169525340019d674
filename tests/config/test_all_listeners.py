"""One broker from one TOML file with tcp, tls, ws and unix listeners at once, and real peers
on each: mosquitto_pub/sub over TCP and TLS, paho over WebSocket and the unix socket, MQTT.js
over WebSocket. A message published on any listener reaches the subscribers on all of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..broker.helpers import PahoClient
from ..broker_process import BrokerProcess
from ..interop.mosquitto import free_port, require_mosquitto
from ..js_peers import require_mqttjs, start_mqttjs
from ..tls_certs import Certificates

TIMEOUT = 15


def test_every_listener_reaches_every_other(tmp_path: Path, certificates: Certificates) -> None:
    require_mosquitto()
    require_mqttjs()
    tcp_port, tls_port, ws_port = free_port(), free_port(), free_port()
    sock = tmp_path / "mqtt.sock"
    config = tmp_path / "mqlite.toml"
    config.write_text(f"""\
sys_interval = 0
[[listeners]]
type = "tcp"
port = {tcp_port}
[[listeners]]
type = "tls"
port = {tls_port}
certfile = "{certificates.server_cert}"
keyfile = "{certificates.server_key}"
[[listeners]]
type = "ws"
port = {ws_port}
path = "/mqtt"
[[listeners]]
type = "unix"
path = "{sock}"
""")
    with BrokerProcess("-c", str(config)) as broker:
        broker.wait_for_log(f"listening on {sock}")
        tls = ["--cafile", str(certificates.ca)]
        subscribers = {
            "tcp": subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(tcp_port),
                                     "-t", "all/#", "-q", "1", "-C", "4", "-i", "sub-tcp"],
                                    stdout=subprocess.PIPE, text=True),
            "tls": subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(tls_port),
                                     *tls, "-t", "all/#", "-q", "1", "-C", "4", "-i",
                                     "sub-tls"], stdout=subprocess.PIPE, text=True),
        }
        mqttjs = start_mqttjs(f"ws://127.0.0.1:{ws_port}/mqtt", "all/#", 4, "all/mqttjs",
                              "from mqtt.js")
        assert mqttjs.stdout is not None and mqttjs.stdin is not None
        assert mqttjs.stdout.readline().strip() == "ready", mqttjs.stderr
        web = PahoClient(("127.0.0.1", ws_port), client_id="paho-ws", transport="websockets")
        web.client.ws_set_options(path="/mqtt")
        web.connect()
        web.subscribe("all/#", qos=1)
        local = PahoClient((str(sock), 1), client_id="paho-unix", transport="unix")  # port unused
        local.connect()
        local.subscribe("all/#", qos=1)
        for client_id in ("sub-tcp", "sub-tls"):
            broker.wait_for_log(f"client {client_id} connected")

        sent = ["from tcp", "from tls", "from paho ws", "from mqtt.js"]
        assert subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tcp_port),
                               "-t", "all/tcp", "-q", "1", "-m", sent[0]],
                              timeout=TIMEOUT).returncode == 0
        assert subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(tls_port), *tls,
                               "-t", "all/tls", "-q", "1", "-m", sent[1]],
                              timeout=TIMEOUT).returncode == 0
        web.publish("all/ws", sent[2].encode(), qos=1)
        mqttjs.stdin.write("publish\n")
        mqttjs.stdin.flush()

        expected = sorted(sent)
        for name, process in subscribers.items():
            out, _ = process.communicate(timeout=TIMEOUT)
            assert sorted(out.splitlines()) == expected, name
        for client in (web, local):
            assert sorted(client.message().payload.decode() for _ in sent) == expected
        out, err = mqttjs.communicate(timeout=TIMEOUT)
        assert sorted(out.splitlines()) == expected, err
        web.stop()
        local.stop()
        assert broker.terminate() == 0
