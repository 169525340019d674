"""What one bridge is: the remote broker it connects to, as whom, and which topics it carries in
which direction, with mosquitto's meaning of the directions and prefixes.

A topic ``{pattern, direction, qos, local_prefix, remote_prefix}``: ``out`` subscribes locally
to ``local_prefix + pattern`` and publishes each message remotely with ``local_prefix`` swapped
for ``remote_prefix``; ``in`` subscribes remotely to ``remote_prefix + pattern`` and publishes
locally with the prefixes swapped back; ``both`` does both. An empty pattern, allowed only with
both prefixes set, maps the one topic ``local_prefix`` to ``remote_prefix``.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

from mqlite.protocol import MQTTError, validate_topic_filter

DIRECTIONS = ("out", "in", "both")
BRIDGE_PROTOCOLS = (4, 5)
# The bridge's QoS 1 messages in flight from its local session at once (and so held by the
# remote side's client until acknowledged).
DEFAULT_WINDOW = 20
START_TYPES = ("automatic", "lazy", "once")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeTopic:
    pattern: str
    direction: str = "out"
    qos: int = 0
    local_prefix: str = ""
    remote_prefix: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not "
                             f"{self.direction!r}")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {self.qos!r}")
        for name, prefix in (("local_prefix", self.local_prefix),
                             ("remote_prefix", self.remote_prefix)):
            if "+" in prefix or "#" in prefix:
                raise ValueError(f"{name} may hold no wildcard, not {prefix!r}")
        if not self.pattern and not (self.local_prefix and self.remote_prefix):
            raise ValueError("an empty pattern needs both local_prefix and remote_prefix")
        for name, topic_filter in (("the local filter", self.local_filter),
                                   ("the remote filter", self.remote_filter)):
            try:
                validate_topic_filter(topic_filter)
            except MQTTError as exc:
                raise ValueError(f"{name} {topic_filter!r} is not a valid topic filter: "
                                 f"{exc}") from None

    @property
    def outgoing(self) -> bool:
        return self.direction in ("out", "both")

    @property
    def incoming(self) -> bool:
        return self.direction in ("in", "both")

    @property
    def local_filter(self) -> str:
        return self.local_prefix + self.pattern

    @property
    def remote_filter(self) -> str:
        return self.remote_prefix + self.pattern

    def to_remote(self, local_topic: str) -> str:
        """The remote topic of a message received on this topic's local filter."""
        return self.remote_prefix + local_topic.removeprefix(self.local_prefix)

    def to_local(self, remote_topic: str) -> str:
        """The local topic of a message received on this topic's remote filter."""
        return self.local_prefix + remote_topic.removeprefix(self.remote_prefix)


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeTLS:
    cafile: str | None = None
    capath: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    # Skip checking that the certificate names the host (never for a production bridge).
    insecure: bool = False

    def __post_init__(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("tls needs certfile and keyfile together")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeConfig:
    name: str
    # "host:port" each, tried in turn; the first is the primary (see round_robin).
    addresses: tuple[str, ...]
    protocol: int = 4  # 4 (MQTT 3.1.1) or 5
    client_id: str = ""  # the remote session's; default "<name>.<hostname>" as mosquitto's
    # The local session's client id (reserved: no client may connect with it).
    local_client_id: str = ""  # default "local.<client_id>"
    clean_start: bool = False  # False: a persistent session on the remote side
    username: str | None = None
    password: str | None = None
    password_file: str | None = None  # its first line is the password
    tls: BridgeTLS | None = None
    keepalive: int = 60
    topics: tuple[BridgeTopic, ...] = ()
    # MQTT 3.1.1: the bridge bit in the protocol level, so that a mosquitto or mqlite remote
    # sends back none of the bridge's own messages and keeps their retain flags.
    try_private: bool = True
    # Seconds before reconnecting, growing from the first to the second (with jitter).
    restart_timeout: tuple[float, float] = (5.0, 30.0)
    # False: back to the first address whenever the bridge reconnects; True: the next one.
    round_robin: bool = False
    window: int = DEFAULT_WINDOW
    # mosquitto's start types: automatic (connect at start, reconnect after failures); lazy
    # (connect once ``threshold`` messages wait for the remote broker, disconnect after
    # ``idle_timeout`` seconds without a message either way); once (connect at start, never
    # again after it ends).
    start_type: str = "automatic"
    idle_timeout: float = 60.0
    threshold: int = 10
    # The bridge's state, "1" connected / "0" not, retained on notification_topic (default
    # $SYS/broker/connection/<client_id>/state) here and on the remote broker, where a will
    # sets it to "0" if the connection breaks (mosquitto's notifications).
    notifications: bool = True
    notification_topic: str | None = None
    notifications_local_only: bool = False
    resolved_client_id: str = field(init=False, default="")
    resolved_local_client_id: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "+" in self.name or "#" in self.name:
            raise ValueError(f"name must be non-empty, without '/', '+' or '#', not "
                             f"{self.name!r}")
        if not self.addresses:
            raise ValueError("a bridge needs an address")
        for address in self.addresses:
            split_address(address)
        if self.protocol not in BRIDGE_PROTOCOLS:
            raise ValueError(f"protocol must be 4 (MQTT 3.1.1) or 5, not {self.protocol!r}")
        if not self.topics:
            raise ValueError("a bridge needs at least one topic")
        if self.password is not None and self.password_file is not None:
            raise ValueError("password and password_file exclude each other")
        if not 0 <= self.keepalive <= 65_535:
            raise ValueError(f"keepalive must be from 0 to 65,535, not {self.keepalive}")
        low, high = self.restart_timeout
        if not 0 < low <= high:
            raise ValueError(f"restart_timeout must be [base, cap] with 0 < base <= cap, not "
                             f"{list(self.restart_timeout)}")
        if self.start_type not in START_TYPES:
            raise ValueError(f"start_type must be one of {', '.join(START_TYPES)}, not "
                             f"{self.start_type!r}")
        if self.idle_timeout <= 0 or self.threshold < 1:
            raise ValueError("idle_timeout must be above 0 and threshold at least 1")
        if not 1 <= self.window <= 65_535:
            raise ValueError(f"window must be from 1 to 65,535, not {self.window}")
        client_id = self.client_id or f"{self.name}.{platform.node()}"
        object.__setattr__(self, "resolved_client_id", client_id)
        object.__setattr__(self, "resolved_local_client_id",
                           self.local_client_id or f"local.{client_id}")
        if self.notification_topic is not None and (
                not self.notification_topic or "+" in self.notification_topic
                or "#" in self.notification_topic):
            raise ValueError(f"notification_topic must be a topic name, not "
                             f"{self.notification_topic!r}")

    @property
    def state_topic(self) -> str:
        return self.notification_topic or \
            f"$SYS/broker/connection/{self.resolved_client_id}/state"

    def read_password(self) -> bytes | None:
        """The password to send: given, or the first line of password_file (read at each
        connect, so a rotated one is picked up); OSError if that file cannot be read."""
        if self.password is not None:
            return self.password.encode()
        if self.password_file is None:
            return None
        with open(self.password_file, encoding="utf-8") as file:
            return file.readline().rstrip("\r\n").encode()


def split_address(address: str) -> tuple[str, int]:
    """"host:port" ("[v6]:port"; the port defaults to 1883) as (host, port)."""
    host, colon, port_text = address.rpartition(":")
    if not colon or "]" in port_text:
        host, port_text = address, "1883"
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        raise ValueError(f"address {address!r} names no host")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {address!r}: the port must be a number") from None
    if not 1 <= port <= 65_535:
        raise ValueError(f"address {address!r}: the port must be from 1 to 65,535")
    return host, port
