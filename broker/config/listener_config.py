"""What one listener is: its transport, address and per-listener settings."""

from __future__ import annotations

from dataclasses import dataclass

LISTENER_TYPES = ("tcp", "tls", "ws", "wss", "unix", "http")
TLS_VERSIONS = ("tlsv1.2", "tlsv1.3")


@dataclass(slots=True, kw_only=True)
class ListenerConfig:
    type: str = "tcp"  # tcp | tls | ws | wss | unix; http: metrics, admin API, status page
    host: str = "127.0.0.1"
    port: int = 1883
    # unix: the socket file; ws / wss: the request path it accepts (None: any path).
    path: str | None = None
    # Shown in logs and given to hooks; default "type:port" (unix: "unix:path"), for port 0
    # the port bound.
    name: str = ""
    # TLS (tls, wss): the server's certificate chain and key; a CA to verify clients with.
    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    capath: str | None = None
    # A PEM file of certificate revocation lists: a client certificate they revoke is
    # refused at the handshake.
    crlfile: str | None = None
    require_certificate: bool = False
    tls_version: str = "tlsv1.2"  # the lowest version accepted
    ciphers: str | None = None
    # The client certificate's CN, or its whole subject, becomes the username hooks see.
    use_identity_as_username: bool = False
    use_subject_as_username: bool = False
    # Connections open at once on this listener; -1: unlimited. Over it: closed at accept.
    max_connections: int = -1
    # Prefixed to every topic its clients publish or subscribe to, and taken off the topics
    # they receive (mosquitto's mount_point): clients of different listeners stay apart.
    mount_point: str = ""
    # With the broker's per_listener_settings: this listener's own authentication.
    allow_anonymous: bool | None = None
    password_file: str | None = None
    acl_file: str | None = None

    def __post_init__(self) -> None:
        if self.type not in LISTENER_TYPES:
            raise ValueError(f"type must be one of {', '.join(LISTENER_TYPES)}, "
                             f"not {self.type!r}")
        if not 0 <= self.port <= 65_535:
            raise ValueError(f"port must be from 0 to 65,535, not {self.port}")
        if self.type == "unix" and not self.path:
            raise ValueError("a unix listener needs a path")
        if self.type in ("tls", "wss") and not (self.certfile and self.keyfile):
            raise ValueError(f"a {self.type} listener needs certfile and keyfile")
        if self.require_certificate and not (self.cafile or self.capath):
            raise ValueError("require_certificate needs cafile or capath")
        if self.crlfile and not (self.cafile or self.capath):
            raise ValueError("crlfile needs cafile or capath")
        if self.tls_version not in TLS_VERSIONS:
            raise ValueError(f"tls_version must be one of {', '.join(TLS_VERSIONS)}, "
                             f"not {self.tls_version!r}")
        if self.max_connections < -1 or self.max_connections == 0:
            raise ValueError(f"max_connections must be -1 (unlimited) or at least 1, "
                             f"not {self.max_connections}")
        if any(c in self.mount_point for c in "+#") or self.mount_point.startswith("$"):
            raise ValueError(f"mount_point may hold no wildcard and not start with $, not "
                             f"{self.mount_point!r}")
        if not self.name and (self.type == "unix" or self.port):
            self.name = self.default_name(self.port)

    def default_name(self, port: int) -> str:
        """"type:port" ("unix:path"); with port 0, named once bound, by the port it got."""
        return f"unix:{self.path}" if self.type == "unix" else f"{self.type}:{port}"

    @property
    def tls(self) -> bool:
        return self.type in ("tls", "wss")

    @property
    def http(self) -> bool:
        return self.type == "http"

    @property
    def websocket(self) -> bool:
        return self.type in ("ws", "wss")

    def describe(self) -> str:
        """Where it listens, for messages: "tls:8883 (0.0.0.0:8883)"."""
        where = self.path if self.type == "unix" else f"{self.host}:{self.port}"
        return f"{self.name} ({where})"
