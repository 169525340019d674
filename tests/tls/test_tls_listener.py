"""TLS listeners with real peers: mosquitto's clients with --cafile and with client
certificates, paho with tls_set(), a stalled handshake, and certificates as usernames."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from mqlite.broker import Broker, Hook
from mqlite.broker.config.listener_config import ListenerConfig
from mqlite.broker.hooks import ClientInfo

from ..broker.helpers import PahoClient, RawClient, wait_until
from ..broker_process import BrokerProcess
from ..interop.mosquitto import require_mosquitto
from ..tls_certs import Certificates, revocation_list, signed_client

TIMEOUT = 10


def tls_config(tmp_path: Path, certs: Certificates, **extra: Any) -> str:
    lines = ["sys_interval = 0", "[[listeners]]", 'type = "tls"', "port = 0",
             f'certfile = "{certs.server_cert}"', f'keyfile = "{certs.server_key}"',
             f'cafile = "{certs.ca}"']
    lines += [f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
              for key, value in extra.items()]
    path = tmp_path / "tls.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def mosquitto_pub(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(port), "-t", "tls/t",
                           "-q", "1", *args], capture_output=True, text=True, timeout=TIMEOUT)


def test_mosquitto_clients_over_tls(tmp_path: Path, certificates: Certificates) -> None:
    require_mosquitto()
    with BrokerProcess("-c", tls_config(tmp_path, certificates)) as broker:
        port = broker.address[1]
        sub = subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(port),
                                "--cafile", str(certificates.ca), "-t", "tls/#", "-C", "1",
                                "-q", "1", "-i", "tls-sub"],
                               stdout=subprocess.PIPE, text=True)
        broker.wait_for_log("client tls-sub connected")
        done = mosquitto_pub(port, "--cafile", str(certificates.ca), "-m", "over tls")
        assert done.returncode == 0, done.stderr
        out, _ = sub.communicate(timeout=TIMEOUT)
        assert out == "over tls\n"
        # A client that does not trust the broker's CA gives up; the broker goes on.
        refused = mosquitto_pub(port, "--cafile", str(certificates.other_ca), "-m", "no")
        assert refused.returncode != 0
        broker.wait_for_log("TLS handshake with .* failed")
        assert mosquitto_pub(port, "--cafile", str(certificates.ca), "-m", "x").returncode == 0
        broker.terminate()


def test_require_certificate(tmp_path: Path, certificates: Certificates) -> None:
    require_mosquitto()
    path = tls_config(tmp_path, certificates, require_certificate=True)
    with BrokerProcess("-c", path) as broker:
        port = broker.address[1]
        without = mosquitto_pub(port, "--cafile", str(certificates.ca), "-m", "anonymous")
        assert without.returncode != 0
        with_cert = mosquitto_pub(port, "--cafile", str(certificates.ca), "--cert",
                                  str(certificates.client_cert), "--key",
                                  str(certificates.client_key), "-m", "signed")
        assert with_cert.returncode == 0, with_cert.stderr
        broker.terminate()


class Recorder(Hook):
    def __init__(self) -> None:
        self.clients: list[ClientInfo] = []

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        self.clients.append(client)
        return True


@pytest.mark.parametrize(("option", "username"), [
    ("use_identity_as_username", "sensor-7"),
    ("use_subject_as_username", "CN=sensor-7,O=mqlite tests,C=DE"),
])
def test_the_certificate_gives_the_username(certificates: Certificates, option: str,
                                            username: str) -> None:
    recorder = Recorder()
    listener = ListenerConfig(type="tls", port=0, certfile=str(certificates.server_cert),
                              keyfile=str(certificates.server_key), cafile=str(certificates.ca),
                              **{option: True})
    with Broker(listeners=[listener], hooks=[recorder], sys_interval=0) as broker:
        client = PahoClient(broker.address, client_id="cert-user")
        client.client.tls_set(ca_certs=str(certificates.ca),
                              certfile=str(certificates.client_cert),
                              keyfile=str(certificates.client_key))
        client.client.username_pw_set("claimed-name")
        client.connect()
        [info] = recorder.clients
        assert info.username == username, "the certificate's, not the one the client sent"
        assert info.peer_certificate is not None
        assert info.listener == f"tls:{broker.address[1]}"
        client.stop()
        # Without a certificate there is no username to take: refused (CONNACK 5).
        bare = PahoClient(broker.address, client_id="no-cert")
        bare.client.tls_set(ca_certs=str(certificates.ca))
        _, rc, _ = bare.connect()
        assert str(rc) == "Not authorized"
        bare.stop()


def test_a_stalled_handshake_blocks_nobody_and_meets_the_connect_timeout(
        certificates: Certificates) -> None:
    listener = ListenerConfig(type="tls", port=0, certfile=str(certificates.server_cert),
                              keyfile=str(certificates.server_key))
    with Broker(listeners=[listener], connect_timeout=3.0, sys_interval=0) as broker:
        stalled = socket.create_connection(broker.address)
        stalled.sendall(b"\x16\x03\x01\x00\xff")  # the start of a ClientHello, never finished
        context = ssl.create_default_context(cafile=str(certificates.ca))
        started = time.monotonic()
        with socket.create_connection(broker.address, timeout=TIMEOUT) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        # Had the loop waited on the stalled handshake, this one would have waited for the
        # connect timeout (3 s) to end it.
        assert time.monotonic() - started < 2.5, "the other client waited for the stalled one"
        stalled.settimeout(TIMEOUT)
        assert stalled.recv(100) == b"", "closed at the connect timeout"
        stalled.close()
        wait_until(lambda: not broker.connections, what="the stalled connection to go")


def test_tls_1_1_is_refused_by_default(certificates: Certificates) -> None:
    listener = ListenerConfig(type="tls", port=0, certfile=str(certificates.server_cert),
                              keyfile=str(certificates.server_key))
    with Broker(listeners=[listener], sys_interval=0) as broker:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(str(certificates.ca))
        with warnings.catch_warnings():  # deprecated: which is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(broker.address, timeout=TIMEOUT) as raw, \
                pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="localhost")
        plain = RawClient(broker.address)  # not TLS at all: the handshake fails, closed
        plain.send_bytes(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        plain.expect_closed()


def test_a_missing_certificate_is_one_line_and_nothing_starts(tmp_path: Path,
                                                              certificates: Certificates
                                                              ) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(f'[[listeners]]\ntype = "tls"\nname = "secure"\nport = 0\n'
                    f'certfile = "{tmp_path}/missing.crt"\nkeyfile = "{certificates.server_key}"\n')
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "-c", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "listener secure: cannot use certfile" in done.stderr


def test_a_revoked_client_certificate_is_refused_with_crlfile_from_a_mosquitto_conf(
        tmp_path: Path, certificates: Certificates) -> None:
    """mosquitto.conf's crlfile, as mosquitto applies it: a certificate the CRL revokes is
    refused at the handshake; the CA's other certificates still get in."""
    require_mosquitto()
    revoked_cert, revoked_key = signed_client(certificates, "stolen-device")
    crl = revocation_list(certificates, revoked_cert, tmp_path)
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener 0 127.0.0.1\ncertfile {certificates.server_cert}\n"
                      f"keyfile {certificates.server_key}\ncafile {certificates.ca}\n"
                      f"require_certificate true\nuse_identity_as_username true\n"
                      f"crlfile {crl}\n")
    with BrokerProcess("-c", str(config)) as broker:
        port = broker.address[1]
        trusted = mosquitto_pub(port, "--cafile", str(certificates.ca), "--cert",
                                str(certificates.client_cert), "--key",
                                str(certificates.client_key), "-m", "still trusted")
        assert trusted.returncode == 0, trusted.stderr
        refused = mosquitto_pub(port, "--cafile", str(certificates.ca), "--cert",
                                str(revoked_cert), "--key", str(revoked_key), "-m", "revoked")
        assert refused.returncode != 0
        broker.wait_for_log("TLS handshake with .* failed.*revoked")
        broker.terminate()


def test_a_crlfile_that_is_not_one_is_one_line(tmp_path: Path,
                                                certificates: Certificates) -> None:
    bogus = tmp_path / "not-a.crl"
    bogus.write_text("nothing here\n")
    path = tls_config(tmp_path, certificates, crlfile=f'"{bogus}"')
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "-c", path],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot use crlfile" in done.stderr, done.stderr
