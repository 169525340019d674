"""Broker settings with their defaults. Every limit that bounds memory lives here."""

from __future__ import annotations

from dataclasses import dataclass, field

from mqlite.protocol import DEFAULT_MAX_TOPIC_LEVELS, PROTOCOL_MAX_PACKET_SIZE

from ..bridge.config import BridgeConfig
from ..cluster.config import ClusterConfig
from .listener_config import ListenerConfig

NEVER_EXPIRES = 0xFFFF_FFFF  # MQTT 5 session expiry interval meaning "never"
QUEUE_OVERFLOW_POLICIES = ("drop-oldest", "drop-newest", "reject")


@dataclass(slots=True, kw_only=True)
class BrokerConfig:
    # The listener used when ``listeners`` is empty: TCP on host:port.
    host: str = "127.0.0.1"
    port: int = 1883
    listeners: list[ListenerConfig] = field(default_factory=list)
    # Connections to other brokers, each carrying its topics in or out (see bridge.py).
    bridges: list[BridgeConfig] = field(default_factory=list)
    # Cluster mode: this broker is one node of several sharing a Redis (see cluster.py).
    cluster: ClusterConfig | None = None
    # TCP listeners set SO_REUSEPORT, so that several processes (``--workers``) share their
    # ports and the kernel spreads the connections among them.
    reuse_port: bool = False
    # Largest packet accepted from a client, fixed header included (advertised to MQTT 5
    # clients as Maximum Packet Size). A CONNECT may not be larger than connect_packet_limit.
    max_packet_size: int = 1024 * 1024
    connect_packet_limit: int = 64 * 1024
    # A socket that has not sent a complete CONNECT this long after accept is closed.
    connect_timeout: float = 10.0
    # Keep alive above this (or 0, meaning none) is refused for MQTT 3.1.1 (return code 2) and
    # replaced by Server Keep Alive for MQTT 5. None accepts what the client asks.
    max_keepalive: int | None = None
    max_topic_levels: int = DEFAULT_MAX_TOPIC_LEVELS
    # Outbound QoS 1/2 messages in flight per session (also bounded by the client's Receive
    # Maximum); the rest wait in the session's queue.
    max_inflight: int = 20
    # Queued messages per session, by count and by payload and topic bytes (mosquitto's
    # meaning), for a persistent session whose queue the disk store holds: it keeps at most
    # max_memory_queued_messages of them in memory (none while offline), so these are disk
    # limits. A day of one message a second is 86,400.
    max_queued_messages: int = 100_000
    max_queued_bytes: int = 64 * 1024 * 1024
    # The same for a queue held in memory: a non-persistent session's (a live subscriber
    # falling behind), or any session's with the in-memory store. Half of this many queued
    # messages make a live session "congested": it pauses its publishers while it drains.
    max_memory_queued_messages: int = 1000
    max_memory_queued_bytes: int = 16 * 1024 * 1024
    # Bytes queued by all persistent sessions together, so that many sessions cannot fill
    # the disk; 0: no limit. Past it a new message is not queued: dropped for its session,
    # or with "reject" refused to an MQTT 5 publisher.
    max_store_bytes: int = 1024 * 1024 * 1024
    # What a full queue does: drop its oldest message, drop the new one, or ("reject") refuse
    # an MQTT 5 publisher's QoS 1/2 message with 0x97 (Quota exceeded) before anyone gets it
    # (MQTT 3.1.1 publishers, QoS 0 and wills: the new message is dropped). Drops are counted.
    queue_overflow: str = "drop-oldest"
    # Whether QoS 0 messages are queued for offline persistent sessions (mosquitto: off).
    queue_qos0: bool = False
    # Inbound QoS 2 messages awaiting PUBREL per connection (advertised as Receive Maximum).
    receive_maximum: int = 100
    # Topic aliases a client may use towards the broker (MQTT 5).
    topic_alias_maximum: int = 10
    max_qos: int = 2
    # Deliver at the subscription's QoS even when the message was published lower (mosquitto's
    # upgrade_outgoing_qos); by default a message goes out at the lower of the two.
    upgrade_outgoing_qos: bool = False
    retain_available: bool = True
    # Whether a client may connect without a client id (and be given one); if not, such a
    # CONNECT is refused (MQTT 3.1.1: return code 2, MQTT 5: 0x85).
    allow_zero_length_clientid: bool = True
    # Largest PUBLISH payload accepted, in bytes; 0: no limit beyond max_packet_size. A
    # larger message is not routed; its QoS flow completes (MQTT 5: reason code 0x83).
    message_size_limit: int = 0
    # Payload bytes of outbound QoS 1/2 messages in flight per session; 0: no limit (only
    # max_inflight). Past it, further messages wait in the session's queue.
    max_inflight_bytes: int = 0
    # Subscriptions per session; more get SUBACK 0x80 / 0x97 (quota exceeded).
    max_subscriptions: int = 1000
    # Per-connection output: past the soft limit QoS 0 messages to it are dropped (counted);
    # past the hard limit the connection is closed.
    output_soft_limit: int = 1024 * 1024
    output_hard_limit: int = 8 * 1024 * 1024
    # Seconds a closing connection may take to flush its output before it is cut off.
    close_timeout: float = 5.0
    # MQTT 3.1.1 persistent sessions never expire unless this is set (seconds).
    session_expiry: int | None = None
    # How often $SYS/broker/... topics are published (seconds); 0 disables them.
    sys_interval: float = 10.0
    # Authentication (see broker/security/authentication.py): for every listener, or with
    # per_listener_settings each listener's own allow_anonymous and password_file. None for
    # allow_anonymous: false where any authentication is configured, true where none is.
    per_listener_settings: bool = False
    allow_anonymous: bool | None = None
    password_file: str | None = None
    # mosquitto's ACL file (see broker/security/acl_file.py); per listener with
    # per_listener_settings.
    acl_file: str | None = None
    # SCRAM-SHA-256 users for MQTT 5 enhanced authentication (see broker/security/scram_auth.py).
    scram_file: str | None = None
    # An HTTP listener for /metrics, /health, the admin API and the status page, besides
    # the others: "PORT" (on 127.0.0.1) or "HOST:PORT".
    http: str | None = None
    # Needed (Authorization: Bearer ...) by every HTTP endpoint but /metrics and /health.
    admin_token: str | None = None

    def __post_init__(self) -> None:
        if self.http is not None:
            port = self.http.rpartition(":")[2]
            if not port.isdigit() or not 0 <= int(port) <= 65_535:
                raise ValueError(f"http must be PORT or HOST:PORT, not {self.http!r}")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("admin_token must be at least 16 characters")
        names = [listener.name for listener in self.effective_listeners() if listener.name]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two listeners are named {name!r}")
        if not self.per_listener_settings:
            for listener in self.effective_listeners():
                if (listener.password_file is not None or listener.acl_file is not None
                        or listener.allow_anonymous is not None):
                    raise ValueError(f"listener {listener.name or listener.type}: "
                                     "password_file, acl_file and allow_anonymous of its own "
                                     "need per_listener_settings = true")
        places: dict[object, str] = {}
        for listener in self.effective_listeners():
            place = listener.path if listener.type == "unix" else (listener.host, listener.port)
            if listener.type != "unix" and not listener.port:
                continue  # port 0: each gets a port of its own
            if place in places:
                raise ValueError(f"listener {listener.describe()} listens where listener "
                                 f"{places[place]} does")
            places[place] = listener.name
        seen: set[tuple[str, str]] = set()
        for bridge in self.bridges:
            for what, value in (("named", bridge.name),
                                ("given the local client id", bridge.resolved_local_client_id)):
                if (what, value) in seen:
                    raise ValueError(f"two bridges are {what} {value!r}")
                seen.add((what, value))
        if self.queue_overflow not in QUEUE_OVERFLOW_POLICIES:
            raise ValueError("queue_overflow must be 'drop-oldest', 'drop-newest' or 'reject', "
                             f"not {self.queue_overflow!r}")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise ValueError(f"{name} must be {describe_range(low, high)}, not {value}")

    def effective_listeners(self) -> list[ListenerConfig]:
        listeners = self.listeners or [ListenerConfig(host=self.host, port=self.port)]
        if self.http is not None:
            host, _, port = self.http.rpartition(":")
            listeners = [*listeners, ListenerConfig(type="http", host=host.strip("[]")
                                                    or "127.0.0.1", port=int(port))]
        return listeners


# The range of every numeric setting (None, where a setting allows it, means "no limit").
LIMITS: dict[str, tuple[float, float]] = {
    "port": (0, 65_535),
    # Below 64 bytes not even a CONNECT with a client id fits; above this no packet can be.
    "max_packet_size": (64, PROTOCOL_MAX_PACKET_SIZE),
    "connect_packet_limit": (64, PROTOCOL_MAX_PACKET_SIZE),
    "connect_timeout": (0.1, 3_600),
    "max_keepalive": (1, 65_535),
    "max_topic_levels": (1, 65_535),
    "max_inflight": (1, 65_535),
    "max_queued_messages": (1, 1_000_000_000),
    "max_queued_bytes": (1, 1 << 48),
    "max_memory_queued_messages": (1, 1_000_000_000),
    "max_memory_queued_bytes": (1, 1 << 48),
    "max_store_bytes": (0, 1 << 56),
    "receive_maximum": (1, 65_535),
    "topic_alias_maximum": (0, 65_535),
    "max_qos": (0, 2),
    "message_size_limit": (0, PROTOCOL_MAX_PACKET_SIZE),
    "max_inflight_bytes": (0, 1 << 48),
    "max_subscriptions": (1, 1_000_000_000),
    "output_soft_limit": (1, 1 << 48),
    "output_hard_limit": (1, 1 << 48),
    "close_timeout": (0.1, 3_600),
    "session_expiry": (1, NEVER_EXPIRES),
    "sys_interval": (0, 86_400),
}


def describe_range(low: float, high: float) -> str:
    return f"from {low:,} to {high:,}"
