"""SIGHUP with connections open: they stay open, a changed limit takes effect, a listener added
to the file opens, and a broken file is refused while the running configuration goes on."""

from __future__ import annotations

import signal
from pathlib import Path

from ..broker.helpers import RawClient
from ..broker_process import BrokerProcess
from ..interop.mosquitto import free_port


def test_sighup_reloads_without_dropping_connections(tmp_path: Path) -> None:
    config = tmp_path / "mqlite.toml"
    log_file = tmp_path / "mqlite.log"
    first_port, added_port = free_port(), free_port()
    listener = f"[[listeners]]\nport = {first_port}\nname = \"main\"\n"
    config.write_text(f"sys_interval = 0\nmax_subscriptions = 1\n{listener}")
    with BrokerProcess("-c", str(config)) as broker:
        client = RawClient(broker.address)
        client.connect(client_id="stays")
        assert client.subscribe("a", qos=0).reason_codes == [0]
        assert client.subscribe("b", qos=0, packet_id=2).reason_codes == [0x80], \
            "over max_subscriptions 1"

        config.write_text(f"sys_interval = 0\nmax_subscriptions = 5\nmax_qos = 1\n"
                          f"log_dest = \"file\"\nlog_file = \"{log_file}\"\n{listener}"
                          f"[[listeners]]\nport = {added_port}\nname = \"added\"\n")
        broker.proc.send_signal(signal.SIGHUP)
        broker.wait_for_log("SIGHUP received: reloading")
        # From here the log goes to the file the new configuration names.
        client.ping()  # the connection stayed open through the reload
        granted = client.subscribe("c", qos=2, packet_id=3).reason_codes
        assert granted == [1], "max_subscriptions 5 and max_qos 1 apply to it now"
        newcomer = RawClient(("127.0.0.1", added_port))  # the added listener
        newcomer.connect(client_id="newcomer")
        assert f"listening on 127.0.0.1:{added_port} (added)" in log_file.read_text()

        config.write_text("max_subscriptions = \"many\"\n")  # broken
        broker.proc.send_signal(signal.SIGHUP)
        client.ping()
        text = log_file.read_text()
        for _ in range(200):  # the log is the broker's only answer; each ping is a turn
            if "reload refused" in text:
                break
            client.ping()
            text = log_file.read_text()
        assert ":1: max_subscriptions must be an integer" in text
        assert client.subscribe("d", qos=2, packet_id=4).reason_codes == [1], \
            "the running configuration stays"
        assert log_file.stat().st_mode & 0o777 == 0o600
        assert broker.terminate() == 0
