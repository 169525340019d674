"""rediss://: a node reaches Redis over TLS, verifying it with the CA given in the URL, and
does not join a Redis whose certificate that CA did not sign."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlite.broker import Broker
from mqlite.broker.cluster.config import ClusterConfig, ClusterConfigError

from ..broker.helpers import RawClient, wait_until
from ..tls_certs import Certificates


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tls_redis(tmp_path: Path, certificates: Certificates) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(certificates.server_cert), "--tls-key-file",
         str(certificates.server_key), "--tls-ca-cert-file", str(certificates.ca),
         "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: _listening(port), timeout=10, what="redis-server over TLS")
        yield port
    finally:
        process.kill()
        process.wait()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_a_node_joins_over_tls_with_its_ca_and_refuses_a_server_it_cannot_verify(
        tls_redis: int, certificates: Certificates) -> None:
    good = Broker(port=0, sys_interval=0, cluster=ClusterConfig(
        url=f"rediss://localhost:{tls_redis}/0?ssl_ca_certs={certificates.ca}",
        node_id="tls-1"))
    wrong = Broker(port=0, sys_interval=0, cluster=ClusterConfig(
        url=f"rediss://localhost:{tls_redis}/0?ssl_ca_certs={certificates.other_ca}",
        node_id="tls-2"))
    good.start()
    wrong.start()
    try:
        good_node, wrong_node = good.core.cluster, wrong.core.cluster
        assert good_node is not None and wrong_node is not None
        wait_until(lambda: good_node.available, what="tls-1 joined over TLS")
        assert RawClient(good.address, 5).connect("over-tls", protocol_version=5) \
            .reason_code == 0
        wait_until(lambda: wrong_node.stats.outages > 0, what="tls-2 refused the server")
        assert not wrong_node.available
        assert RawClient(wrong.address, 5).connect("refused", protocol_version=5) \
            .reason_code == 0x88
    finally:
        good.stop()
        wrong.stop()


def test_a_missing_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match="ssl_ca_certs"):
        ClusterConfig(url=f"rediss://h/0?ssl_ca_certs={tmp_path}/none.crt").checked("n")
    with pytest.raises(ClusterConfigError, match="unknown option"):
        ClusterConfig(url="redis://h/0?ssl_ca_certs=x").checked("n")
