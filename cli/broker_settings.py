"""The daemon's effective settings: the defaults, then the configuration file, then the flags
given on the command line; and the flags themselves, one per setting."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mqlite.broker import BrokerConfig
from mqlite.broker.bridge.config import BridgeConfig, BridgeTLS, BridgeTopic
from mqlite.broker.cluster.config import ClusterConfig, ClusterConfigError, default_node_id
from mqlite.broker.config.broker_config import LIMITS, QUEUE_OVERFLOW_POLICIES, describe_range
from mqlite.broker.config.config_file import (
    BROKER_TYPES,
    DAEMON_CHOICES,
    DAEMON_KEYS,
    ConfigError,
    FileSettings,
    load,
)
from mqlite.broker.config.listener_config import ListenerConfig
from mqlite.broker.security.authentication import allows_anonymous, open_beyond_loopback

# Each broker setting's flag help (the flag is --the-setting-name).
BROKER_HELP = {
    "host": "address of the default TCP listener; 0.0.0.0 or :: for all (default: 127.0.0.1)",
    "port": "port of the default TCP listener; 0 picks a free one (default: 1883)",
    "max_packet_size": "largest packet a client may send, in bytes",
    "connect_packet_limit": "largest CONNECT packet, in bytes",
    "connect_timeout": "seconds a new connection has to send CONNECT",
    "max_keepalive": "largest keep alive a client may ask for, in seconds",
    "max_topic_levels": "most levels a topic or filter may have",
    "max_inflight": "QoS 1/2 messages in flight per client",
    "max_queued_messages": "messages queued per persistent session, on disk",
    "max_queued_bytes": "payload and topic bytes queued per persistent session, on disk",
    "max_memory_queued_messages": "messages queued per session held in memory",
    "max_memory_queued_bytes": "payload and topic bytes queued per session held in memory",
    "max_store_bytes": "bytes queued by all persistent sessions together; 0: no limit",
    "queue_overflow": "what a full queue does: drop a message, or reject it (MQTT 5, 0x97)",
    "queue_qos0": "queue QoS 0 messages for offline persistent sessions",
    "receive_maximum": "inbound QoS 2 messages awaiting PUBREL per client",
    "topic_alias_maximum": "topic aliases an MQTT 5 client may use",
    "max_qos": "highest QoS the broker accepts and grants",
    "upgrade_outgoing_qos": "deliver at the subscription's QoS even when published lower",
    "allow_zero_length_clientid": "accept clients without a client id (and give them one)",
    "message_size_limit": "largest PUBLISH payload accepted, in bytes; 0: no limit",
    "max_inflight_bytes": "payload bytes of QoS 1/2 messages in flight per session; 0: none",
    "retain_available": "keep retained messages",
    "max_subscriptions": "subscriptions per session",
    "output_soft_limit": "bytes queued to a client past which its QoS 0 messages are dropped",
    "output_hard_limit": "bytes queued to a client past which it is disconnected",
    "close_timeout": "seconds a closing connection may take to flush",
    "session_expiry": "seconds an MQTT 3.1.1 persistent session outlives its connection "
                      "(default: never expires)",
    "sys_interval": "seconds between $SYS updates; 0 turns them off",
    "per_listener_settings": "each listener has its own allow_anonymous and password_file",
    "allow_anonymous": "accept clients without a username (default: only where nothing "
                       "authenticates)",
    "password_file": "mosquitto-format password file (mosquitto_passwd, mqlite passwd)",
    "acl_file": "mosquitto-format ACL file",
    "scram_file": "SCRAM-SHA-256 users for MQTT 5 enhanced authentication (mqlite passwd "
                  "--scram)",
    "reuse_port": "let several broker processes listen on the same TCP ports (SO_REUSEPORT; "
                  "--workers sets it)",
    "http": "HTTP listener for /metrics, /health, the admin API and the status page: PORT "
            "(on 127.0.0.1) or HOST:PORT",
}
# Settings never taken as flags nor printed.
SECRETS = frozenset({"admin_token"})
DAEMON_HELP = {
    "db": "SQLite file for persistent sessions and retained messages, created 0600; "
          "':memory:' keeps nothing (default: mqlite.db)",
    "sync": "full: an acknowledged message survives power loss; normal: it survives a process "
            "crash, and is faster (default: full)",
    "log_level": "logging level (default: info)",
    "log_format": "text, or json: one object a line (default: text)",
    "log_dest": "where logs go (default: stderr)",
}


@dataclass(slots=True)
class DaemonSettings:
    broker: BrokerConfig
    db: str
    sync: str
    log_level: str
    log_dest: str
    log_file: str | None
    log_format: str
    connection_messages: bool
    warnings: list[str]

    @property
    def node_id(self) -> str | None:
        """Cluster mode's node id, where one is given (for the log lines)."""
        cluster = self.broker.cluster
        return cluster.node_id or None if cluster is not None else None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _number(setting: str, kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type: a number within the setting's range (LIMITS of
    broker/config/broker_config.py)."""
    low, high = LIMITS[setting]

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {describe_range(low, high)}, "
                                             f"not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {describe_range(low, high)}, not {text}")
        return value

    return parse


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; every default is None, so a flag overrides only when given."""
    for name, kind in BROKER_TYPES.items():
        if name in SECRETS:
            continue
        options: dict[str, Any] = {"help": BROKER_HELP[name], "default": None, "dest": name}
        base = next((k for k in (int, float, bool, str) if k is kind or k in getattr(
            kind, "__args__", ())), str)
        if base is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif name in LIMITS:
            options["type"] = _number(name, float if base is float else int)
        if name == "queue_overflow":
            options["choices"] = list(QUEUE_OVERFLOW_POLICIES)
        parser.add_argument(_flag(name), **options)
    for name in ("db", "sync", "log_level", "log_format"):
        parser.add_argument(_flag(name), default=None, dest=name, help=DAEMON_HELP[name],
                            choices=DAEMON_CHOICES.get(name))
    parser.add_argument("--log-file", default=None, dest="log_file", metavar="PATH",
                        help="log to this file (reopened on SIGHUP, for logrotate)")
    parser.add_argument("--admin-token-file", default=None, dest="admin_token_file",
                        metavar="PATH", help="a file holding the admin API's bearer token")
    cluster = parser.add_argument_group("cluster mode")
    cluster.add_argument("--cluster", default=None, dest="cluster_url", metavar="URL",
                         help="join the cluster whose nodes share this Redis or Valkey: "
                              "redis://HOST:PORT/DB, rediss:// (TLS) or unix:///PATH")
    cluster.add_argument("--node-id", default=None, dest="node_id", metavar="ID",
                         help="this node's name in the cluster, the same across restarts "
                              "(default: the host name and the port)")
    cluster.add_argument("--node-ttl", default=None, dest="node_ttl", metavar="SECONDS",
                         type=float, help="seconds without a heartbeat after which a node "
                                          "counts as gone (default: 10)")


def resolve(args: argparse.Namespace) -> DaemonSettings:
    """Defaults < file < flags. ConfigError (one line) for anything that cannot be used."""
    settings = load(args.config) if args.config else FileSettings()
    values: dict[str, Any] = dict(DAEMON_KEYS)
    values.update(settings.values)
    given = {name: getattr(args, name) for name in [*BROKER_TYPES, *DAEMON_KEYS]
             if getattr(args, name, None) is not None}
    if settings.listeners and ("host" in given or "port" in given):
        flag = "--port" if "port" in given else "--host"
        raise ConfigError(f"{flag}: {args.config} declares its listeners; change them there")
    values.update(given)
    token_file = getattr(args, "admin_token_file", None)
    if token_file is not None:
        values["admin_token"] = _read_token(token_file)
    if "log_file" in given and "file" not in values["log_dest"].split(","):
        values["log_dest"] = "file" if "log_dest" in given or values["log_dest"] == "stderr" \
            else values["log_dest"] + ",file"
    for name, choices in DAEMON_CHOICES.items():
        # log_dest: one destination, or several joined by commas ("file,stdout")
        chosen = values[name].split(",") if name == "log_dest" else [values[name]]
        for value in chosen:
            if value.strip() not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, not "
                                  f"{value.strip()!r}")
    dests = [dest.strip() for dest in values["log_dest"].split(",")]
    if "none" in dests and len(dests) > 1:
        raise ConfigError(f"log_dest none means no log at all, not with {values['log_dest']!r}")
    if "file" in dests and not values["log_file"]:
        raise ConfigError("log_dest file needs log_file")
    broker_values = {name: values[name] for name in BROKER_TYPES if name in values}
    try:
        broker = BrokerConfig(listeners=settings.listeners, bridges=settings.bridges,
                              cluster=_cluster(args, settings), **broker_values)
    except ValueError as exc:
        raise ConfigError(f"{args.config}: {exc}" if args.config else str(exc)) from None
    return DaemonSettings(broker=broker, db=values["db"], sync=values["sync"],
                          log_level=values["log_level"], log_dest=values["log_dest"],
                          log_file=values["log_file"], log_format=values["log_format"],
                          connection_messages=values["connection_messages"],
                          warnings=[*settings.warnings, *open_beyond_loopback(broker)])


def _cluster(args: argparse.Namespace, settings: FileSettings) -> ClusterConfig | None:
    """[cluster] from the file, with --cluster, --node-id and --node-ttl over it."""
    values = dict(settings.cluster or {})
    for flag, key in (("cluster_url", "url"), ("node_id", "node_id"), ("node_ttl", "node_ttl")):
        if getattr(args, flag, None) is not None:
            values[key] = getattr(args, flag)
    if not values:
        return None
    if "url" not in values:
        if getattr(args, "workers", None) is not None:
            return None  # the workers' own cluster, on a Redis they start (cli/workers.py)
        raise ConfigError("cluster mode needs a url: --cluster URL, or url in [cluster]")
    try:
        config = ClusterConfig(**values)
        config.checked(default_node_id(0))
    except ClusterConfigError as exc:
        raise ConfigError(str(exc)) from None
    require_hiredis()
    return config


def require_hiredis() -> None:
    """Cluster mode (and --workers) talk to Redis through hiredis, an optional dependency."""
    if importlib.util.find_spec("hiredis") is None:
        raise ConfigError("cluster mode needs hiredis: pip install 'mqlite[cluster]'")


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            token = file.read().strip()
    except OSError as exc:
        raise ConfigError(f"--admin-token-file: cannot read {path}: "
                          f"{exc.strerror or exc}") from None
    if not token:
        raise ConfigError(f"--admin-token-file: {path} is empty")
    return token


def effective_toml(settings: DaemonSettings) -> str:
    """The effective configuration, as a TOML file that would give it (``--check``)."""
    lines = ["# mqlite broker: effective configuration", "#", "# It will listen on:"]
    for listener in settings.broker.effective_listeners():
        where = listener.path if listener.type == "unix" else \
            f"{listener.host}:{listener.port or '(a free port)'}"
        if listener.type == "http":
            what = "metrics, health, admin API, status page"
        else:
            what = "anonymous clients " + ("allowed" if allows_anonymous(settings.broker,
                                                                         listener) else "refused")
        lines.append(f"#   {listener.type} {where} ({listener.name or listener.type}): {what}")
    lines.append("")
    daemon = {name: getattr(settings, name) for name in DAEMON_KEYS}
    broker = {f.name: getattr(settings.broker, f.name)
              for f in dataclasses.fields(BrokerConfig)
              if f.name not in ("listeners", "bridges", "cluster")}
    for name, value in [*daemon.items(), *broker.items()]:
        if name in SECRETS and value is not None:
            lines.append(f"# {name} is set (not shown)")
            continue
        lines.append(_toml_line(name, value))
    for listener in settings.broker.effective_listeners():
        lines += ["", "[[listeners]]"]
        for f in dataclasses.fields(ListenerConfig):
            lines.append(_toml_line(f.name, getattr(listener, f.name)))
    cluster = settings.broker.cluster
    if cluster is not None:
        lines += ["", "[cluster]"]
        for f in dataclasses.fields(ClusterConfig):
            value = getattr(cluster, f.name)
            if f.name == "url":
                value = str(cluster.address)  # without a password
                if cluster.address.password is not None:
                    lines.append("# the url's password is set (not shown)")
            lines.append(_toml_line(f.name, value))
    for bridge in settings.broker.bridges:
        lines += ["", "[[bridges]]"]
        for f in dataclasses.fields(BridgeConfig):
            value = getattr(bridge, f.name)
            if f.name == "password" and value is not None:
                lines.append("# password is set (not shown)")
            elif f.name == "topics":
                lines.append("topics = [" + ", ".join(
                    "{ " + ", ".join(f"{t.name} = {json.dumps(getattr(topic, t.name))}"
                                     for t in dataclasses.fields(BridgeTopic)) + " }"
                    for topic in value) + "]")
            elif f.name == "tls":
                lines.append("# tls is not set" if value is None else "tls = { " + ", ".join(
                    f"{t.name} = {json.dumps(getattr(value, t.name))}"
                    for t in dataclasses.fields(BridgeTLS)
                    if getattr(value, t.name) is not None) + " }")
            elif f.name in ("addresses", "restart_timeout"):
                lines.append(f"{f.name} = {json.dumps(list(value))}")
            elif f.name.startswith("resolved_"):
                continue
            else:
                lines.append(_toml_line(f.name, value))
    return "\n".join(lines) + "\n"


def _toml_line(name: str, value: Any) -> str:
    if value is None:
        return f"# {name} is not set"
    return f"{name} = {json.dumps(value)}"  # JSON's strings, numbers and booleans are TOML's
