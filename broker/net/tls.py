"""TLS on a listener's accepted sockets: the handshake, one non-blocking step at a time inside
the event loop (a stalled one runs into the connect timeout and blocks nobody), and who the
client certificate says the client is."""

from __future__ import annotations

import ssl
from typing import Any

from ..config.listener_config import ListenerConfig
from ..engine.connection import TlsIdentity

# Errors that mean "not now": the socket must become readable (or writable) first.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Short names of the subject's attributes, as RFC 2253 (and mosquitto) write them.
_SHORT_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
                "emailAddress": "emailAddress", "domainComponent": "DC"}


def wrap(context: ssl.SSLContext, sock: Any) -> ssl.SSLSocket:
    """``sock``: an accepted, non-blocking socket."""
    return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)


def handshake_step(sock: ssl.SSLSocket) -> str:
    """One step: "done", or what to wait for ("read" / "write"). SSLError or OSError if the
    handshake failed."""
    try:
        sock.do_handshake()
    except ssl.SSLWantReadError:
        return "read"
    except ssl.SSLWantWriteError:
        return "write"
    return "done"


def client_identity(sock: ssl.SSLSocket, config: ListenerConfig) -> TlsIdentity:
    """The client certificate (``getpeercert()``'s form; None without one) and the username
    it gives under use_identity_as_username (its CN) or use_subject_as_username (its subject,
    RFC 2253); "" when the listener takes the username from a certificate and there is none
    (the CONNECT is then refused); None when the listener does not."""
    certificate = sock.getpeercert() or None
    if not (config.use_identity_as_username or config.use_subject_as_username):
        return TlsIdentity(certificate, None)
    if certificate is None:
        return TlsIdentity(None, "")
    subject_rdns: Any = certificate.get("subject", ())  # ((("commonName", "x"),), ...)
    rdns = [(name, value) for rdn in subject_rdns for name, value in rdn]
    if config.use_identity_as_username:
        return TlsIdentity(certificate,
                           next((value for name, value in rdns if name == "commonName"), ""))
    subject = ",".join(f"{_SHORT_NAMES.get(name, name)}={value}"
                       for name, value in reversed(rdns))
    return TlsIdentity(certificate, subject)
