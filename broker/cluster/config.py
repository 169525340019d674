"""Cluster mode's settings: where Redis (or Valkey) is, this node's name, and the timers."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("redis", "rediss", "unix")


class ClusterConfigError(ValueError):
    """A cluster setting that cannot work; the message names it."""


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where the shared Redis is, parsed from its URL (the password is never shown)."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a unix socket, instead of host and port
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None
    # rediss: the CA file to verify the server with (default: the system's CAs).
    ca_file: str | None = None

    def __str__(self) -> str:
        where = f"unix://{self.path}" if self.path else \
            f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}"
        where += (f"?db={self.db}" if self.path and self.db else
                  f"/{self.db}" if self.db else "")
        return where + (f"?ssl_ca_certs={self.ca_file}" if self.ca_file else "")


def parse_redis_url(url: str) -> RedisAddress:
    """``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS; ``?ssl_ca_certs=FILE``
    to verify the server with a CA of one's own) or ``unix:///path/redis.sock[?db=N]``."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ClusterConfigError(f"cluster url {url!r}: the scheme must be one of "
                                 f"{', '.join(s + '://' for s in SCHEMES)}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "unix" and not parts.path:
        raise ClusterConfigError(f"cluster url {url!r}: no socket path")
    try:
        if parts.scheme == "unix":
            db = int(parse_qs(parts.query).get("db", ["0"])[0])
            return RedisAddress(path=parts.path, db=db, username=username, password=password)
        db = int(parts.path.strip("/") or 0)
        port = parts.port or 6379
    except ValueError:
        raise ClusterConfigError(f"cluster url {url!r}: bad port or database number") \
            from None
    query = parse_qs(parts.query)
    unknown = set(query) - ({"ssl_ca_certs"} if parts.scheme == "rediss" else set())
    if unknown:
        raise ClusterConfigError(f"cluster url {url!r}: unknown option "
                                 f"{', '.join(sorted(unknown))}")
    ca_file = query.get("ssl_ca_certs", [None])[0]
    return RedisAddress(host=parts.hostname or "127.0.0.1", port=port, db=db,
                        tls=parts.scheme == "rediss", username=username, password=password,
                        ca_file=ca_file)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    url: str
    # This node's name in the cluster: unique, and the same across its restarts (its inbound
    # stream and routes are kept under it).
    node_id: str = ""
    # Seconds without a heartbeat after which the node counts as gone; refreshed every fifth.
    node_ttl: float = 10.0
    # Entries a node's inbound stream keeps while the node does not read it (down, or
    # restarting); older ones are trimmed.
    stream_maxlen: int = 100_000
    # Seconds a CONNECT waits for the node that held its client id to close the old
    # connection, before it goes on without that node's answer.
    takeover_timeout: float = 3.0
    # Redis replicas that must confirm a turn's session writes (WAIT) before its
    # acknowledgements go out; 0: the primary's answer is enough.
    wait_replicas: int = 0
    # Seconds WAIT waits for them; fewer in time fail the turn (nothing acknowledged).
    wait_timeout: float = 1.0

    @property
    def address(self) -> RedisAddress:
        return parse_redis_url(self.url)

    def checked(self, default_node_id: str) -> ClusterConfig:
        """Validated, with the node id filled in; ClusterConfigError naming what is wrong."""
        ca_file = parse_redis_url(self.url).ca_file
        if ca_file is not None and not os.path.isfile(ca_file):
            raise ClusterConfigError(f"cluster url: ssl_ca_certs {ca_file} is not a file")
        node_id = self.node_id or default_node_id
        if not node_id or any(c in node_id for c in " {}|/\n") or len(node_id) > 64:
            raise ClusterConfigError(f"cluster node_id {node_id!r}: 1 to 64 characters, "
                                     "none of space, braces, '|' or '/'")
        if self.node_ttl <= 0:
            raise ClusterConfigError(f"cluster node_ttl {self.node_ttl}: must be positive")
        if self.stream_maxlen < 100:
            raise ClusterConfigError(f"cluster stream_maxlen {self.stream_maxlen}: at least 100")
        if self.takeover_timeout <= 0:
            raise ClusterConfigError(
                f"cluster takeover_timeout {self.takeover_timeout}: must be positive")
        if self.wait_replicas < 0:
            raise ClusterConfigError(
                f"cluster wait_replicas {self.wait_replicas}: must not be negative")
        if self.wait_timeout <= 0:
            raise ClusterConfigError(
                f"cluster wait_timeout {self.wait_timeout}: must be positive")
        return ClusterConfig(url=self.url, node_id=node_id, node_ttl=self.node_ttl,
                             stream_maxlen=self.stream_maxlen,
                             takeover_timeout=self.takeover_timeout,
                             wait_replicas=self.wait_replicas, wait_timeout=self.wait_timeout)


def default_node_id(port: int) -> str:
    """The host's name and the broker's port: stable across restarts, unique per host."""
    return f"{platform.node().split('.')[0] or 'node'}-{port or os.getpid()}"
