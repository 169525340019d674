"""mosquitto.conf's bridges: a ``connection NAME`` line and the bridge options after it, read
into a :class:`~mqlite.broker.bridge.config.BridgeConfig` with mosquitto's defaults and
meanings (``man mosquitto.conf``, "Configuring Bridges")."""

from __future__ import annotations

from typing import Any

from ..bridge.config import BridgeConfig, BridgeTLS, BridgeTopic
from .config_source import ConfigError, conf_bool

_PROTOCOLS = {"mqttv311": 4, "mqttv50": 5}
_STRINGS = {"remote_clientid": "client_id", "local_clientid": "local_client_id",
            "remote_username": "username", "remote_password": "password",
            "notification_topic": "notification_topic"}
_BOOLS = {"cleansession": "clean_start", "try_private": "try_private",
          "notifications": "notifications",
          "notifications_local_only": "notifications_local_only",
          "round_robin": "round_robin"}
_TLS = {"bridge_cafile": "cafile", "bridge_capath": "capath", "bridge_certfile": "certfile",
        "bridge_keyfile": "keyfile"}
# Read and not acted on, with why.
_IGNORED = {
    "local_username": "the bridge's side here is an in-process session, not a login",
    "local_password": "the bridge's side here is an in-process session, not a login",
    "local_cleansession": "the bridge's session here is always persistent",
    "bridge_attempt_unsubscribe": "not supported",
    "bridge_max_packet_size": "not supported",
    "bridge_bind_address": "not supported",
    "bridge_alpn": "not supported",
    "bridge_identity": "TLS-PSK is not supported",
    "bridge_psk": "TLS-PSK is not supported",
    "bridge_tls_version": "the TLS version is negotiated (1.2 or later)",
    "bridge_require_ocsp": "not supported",
}


class BridgeBlock:
    """The options of one ``connection`` block, as they are read."""

    def __init__(self, where: str, name: str, warnings: list[str]) -> None:
        if not name:
            raise ConfigError(f"{where}: connection needs a name")
        self.where = where
        self.name = name
        self.warnings = warnings
        self.values: dict[str, Any] = {"name": name}
        self.tls: dict[str, Any] = {}
        self.topics: list[BridgeTopic] = []

    def option(self, where: str, option: str, value: str) -> None:
        if not value:
            raise ConfigError(f"{where}: {option} needs a value")
        if option in ("address", "addresses"):
            self.values["addresses"] = tuple(value.split())
        elif option == "topic":
            self.topics.append(_topic(where, value))
        elif option == "bridge_protocol_version":
            if value not in _PROTOCOLS:
                raise ConfigError(f"{where}: bridge_protocol_version must be mqttv311 or "
                                  f"mqttv50, not {value!r}")
            self.values["protocol"] = _PROTOCOLS[value]
        elif option in _STRINGS:
            self.values[_STRINGS[option]] = value
        elif option in _BOOLS:
            self.values[_BOOLS[option]] = conf_bool(where, option, value)
        elif option in _TLS:
            self.tls[_TLS[option]] = value
        elif option == "bridge_insecure":
            self.tls["insecure"] = conf_bool(where, option, value)
        elif option == "keepalive_interval":
            self.values["keepalive"] = _number(where, option, value, int)
        elif option == "restart_timeout":
            parts = [_number(where, option, part, float) for part in value.split()]
            if len(parts) not in (1, 2):
                raise ConfigError(f"{where}: restart_timeout is one number or two, not "
                                  f"{value!r}")
            self.values["restart_timeout"] = (parts[0], parts[-1])
        elif option == "start_type":
            self.values["start_type"] = value
        elif option == "idle_timeout":
            self.values["idle_timeout"] = _number(where, option, value, float)
        elif option == "threshold":
            self.values["threshold"] = _number(where, option, value, int)
        elif option == "bridge_outgoing_retain":
            if not conf_bool(where, option, value):
                self.warnings.append(f"{where}: bridge_outgoing_retain false is not "
                                     "supported: retain flags go out as published")
        else:
            self.warnings.append(f"{where}: {option} is not supported for bridges "
                                 f"({_IGNORED.get(option, 'not supported')}); ignored")

    def finish(self) -> BridgeConfig:
        values = dict(self.values, topics=tuple(self.topics))
        if self.tls:
            try:
                values["tls"] = BridgeTLS(**self.tls)
            except ValueError as exc:
                raise ConfigError(f"{self.where}: bridge {self.name!r}: {exc}") from None
        if "addresses" not in values:
            raise ConfigError(f"{self.where}: bridge {self.name!r} needs an address")
        try:
            return BridgeConfig(**values)
        except ValueError as exc:
            raise ConfigError(f"{self.where}: bridge {self.name!r}: {exc}") from None


def _topic(where: str, value: str) -> BridgeTopic:
    """``PATTERN [out|in|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]``; ``""`` is empty."""
    parts = ["" if part == '""' else part for part in value.split()]
    if len(parts) > 5 or len(parts) == 4:
        raise ConfigError(f"{where}: topic is PATTERN [out|in|both [QOS [LOCAL_PREFIX "
                          f"REMOTE_PREFIX]]], not {value!r}")
    fields: dict[str, Any] = {"pattern": parts[0]}
    if len(parts) > 1:
        fields["direction"] = parts[1]
    if len(parts) > 2:
        fields["qos"] = _number(where, "topic's QoS", parts[2], int)
    if len(parts) == 5:
        fields["local_prefix"], fields["remote_prefix"] = parts[3], parts[4]
    try:
        return BridgeTopic(**fields)
    except ValueError as exc:
        raise ConfigError(f"{where}: topic: {exc}") from None


def _number(where: str, option: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{where}: {option} must be a number, not {value!r}") from None
