"""A throwaway certificate authority for TLS tests, made with the openssl command: a CA, a
server certificate for localhost / 127.0.0.1, and a client certificate."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed none of these


def require_openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        if os.environ.get("CI"):
            raise AssertionError("openssl is required in CI (the CI script installs it)")
        pytest.skip("openssl is not installed")
    return path


def _run(*args: str, cwd: Path) -> None:
    subprocess.run([require_openssl(), *args], cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def _ca(directory: Path, name: str) -> None:
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory)


def _signed(directory: Path, name: str, subject: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key",
         "-out", f"{name}.csr", cwd=directory)
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
         cwd=directory)


def make_certificates(directory: Path) -> Certificates:
    _ca(directory, "ca")
    _ca(directory, "other")
    _signed(directory, "server", "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _signed(directory, "client", "/C=DE/O=mqlite tests/CN=sensor-7",
            "extendedKeyUsage=clientAuth\n")
    return Certificates(ca=directory / "ca.crt", server_cert=directory / "server.crt",
                        server_key=directory / "server.key",
                        client_cert=directory / "client.crt",
                        client_key=directory / "client.key", other_ca=directory / "other.crt")


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def signed_client(certificates: Certificates, name: str) -> tuple[Path, Path]:
    """Another client certificate of the test CA: (certificate, key)."""
    directory = certificates.ca.parent
    if not (directory / f"{name}.crt").exists():
        _signed(directory, name, f"/CN={name}", "extendedKeyUsage=clientAuth\n")
    return directory / f"{name}.crt", directory / f"{name}.key"


def revocation_list(certificates: Certificates, revoked: Path, directory: Path) -> Path:
    """A CRL of the test CA (PEM) that revokes ``revoked``, made in ``directory``."""
    ca = certificates.ca.parent
    (directory / "index.txt").write_text("")
    (directory / "crlnumber").write_text("01\n")
    config = directory / "ca.cnf"
    config.write_text(f"[ca]\ndefault_ca = test\n[test]\ndatabase = {directory}/index.txt\n"
                      f"crlnumber = {directory}/crlnumber\ndefault_md = sha256\n"
                      f"default_crl_days = 2\n")
    common = ("-config", str(config), "-keyfile", str(ca / "ca.key"), "-cert",
              str(certificates.ca))
    _run("ca", *common, "-revoke", str(revoked), cwd=directory)
    _run("ca", *common, "-gencrl", "-out", "revoked.crl", cwd=directory)
    return directory / "revoked.crl"
