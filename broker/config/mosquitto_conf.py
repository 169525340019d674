"""mosquitto.conf syntax, read as mosquitto reads it, into mqlite's settings.

Where an option means something different in mosquitto and in mqlite, mosquitto's meaning wins
(this is its file): ``listener PORT`` without an address listens on every address, persistence
is off unless ``persistence true``, 0 means unlimited for the queue and in-flight limits, and
``max_inflight_messages`` also sets the Receive Maximum told to MQTT 5 clients, and once the
file defines a listener (``listener`` or ``port``), ``allow_anonymous`` is false unless the
file says otherwise (mosquitto 2.0's rule; with no listener the broker listens on 127.0.0.1
only and lets anonymous clients in). An option mqlite does not act on gets a warning naming it
and its line, unless ignoring it would let in clients or certificates the file keeps out
(plugins, PSK, client id rules): that stops the start-up with one line naming it. An option
mosquitto does not have, or a malformed value, is an error naming the file and line.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from mqlite.protocol import PROTOCOL_MAX_PACKET_SIZE

from .config_source import ConfigError, FileSettings, conf_bool, read_text
from .listener_config import ListenerConfig
from .mosquitto_bridges import BridgeBlock

# mosquitto's options that mqlite reads but does not act on (yet), with why.
NOT_ACTED_ON = {
    "pid_file": "mqlite writes no pid file: the service manager knows the pid",
    "user": "mqlite does not change user: start it as the user it should run as",
    "http_dir": "mqlite serves no files over HTTP",
}
# mosquitto's options that decide who gets in, which mqlite does not implement: skipping one
# would let in clients the file keeps out, so it stops the start-up.
REFUSED = {
    "plugin": "authentication and access plugins (dynamic security among them) are "
              "mosquitto's shared libraries; use password_file, acl_file or a Python hook",
    "auth_plugin": "authentication plugins are mosquitto's shared libraries; use "
                   "password_file, acl_file or a Python hook",
    "global_plugin": "plugins are mosquitto's shared libraries; use a Python hook",
    "psk_file": "TLS pre-shared keys are not supported; use certificates",
    "psk_hint": "TLS pre-shared keys are not supported; use certificates",
    "clientid_prefixes": "client id prefixes are not enforced; use a Python hook",
    "use_username_as_clientid": "client ids are not replaced by usernames; use a Python hook",
}
# The rest of mosquitto's options (bridge options are reported once per bridge).
OTHER_MOSQUITTO_OPTIONS = {
    "allow_duplicate_messages", "auth_plugin_deny_special_chars",
    "auto_id_prefix", "autosave_interval", "autosave_on_changes", "bind_interface",
    "check_retain_source", "ciphers_tls1.3", "dhparamfile",
    "log_facility", "log_timestamp", "log_timestamp_format", "max_topic_alias", "memory_limit",
    "set_tcp_nodelay", "tls_engine", "tls_engine_kpass_sha1",
    "tls_keyform", "websockets_headers_size",
    "websockets_log_level", "enable_control_api", "accept_protocol_versions",
    "disable_client_cert_date_checks",
}
BRIDGE_OPTIONS = {
    "address", "addresses", "bridge_alpn", "bridge_attempt_unsubscribe", "bridge_bind_address",
    "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity", "bridge_insecure",
    "bridge_keyfile", "bridge_max_packet_size", "bridge_outgoing_retain",
    "bridge_protocol_version", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version",
    "cleansession", "idle_timeout", "keepalive_interval", "local_cleansession",
    "local_clientid", "local_password", "local_username", "notification_topic",
    "notifications", "notifications_local_only", "remote_clientid", "remote_password",
    "remote_username", "restart_timeout", "round_robin", "start_type", "threshold", "topic",
    "try_private",
}
# Listener options taken as they are (they apply to the listener being described).
_LISTENER_STRINGS = ("cafile", "capath", "certfile", "keyfile", "ciphers", "tls_version",
                     "mount_point", "crlfile")
_LISTENER_BOOLS = ("require_certificate", "use_identity_as_username", "use_subject_as_username")
_LOG_TYPES = {"debug": 10, "all": 10, "information": 20, "notice": 20, "subscribe": 20,
              "unsubscribe": 20, "websockets": 20, "warning": 30, "error": 40, "none": 50}
_LEVEL_NAMES = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "error"}
_DURATION = re.compile(r"^(\d+)([hdwmy]?)$")
_UNIT_SECONDS = {"": 1, "h": 3600, "d": 86_400, "w": 7 * 86_400, "m": 30 * 86_400,
                 "y": 365 * 86_400}


class _Reader:
    def __init__(self) -> None:
        self.settings = FileSettings()
        # The listener being described (None: the default listener's options).
        self.listener: dict[str, Any] | None = None
        self.listener_line = ""
        self.default_listener: dict[str, Any] = {}
        self.persistence: bool | None = None
        self.location = ""
        self.file = "mqlite.db"
        self.log_levels: list[int] = []
        self.bridge: BridgeBlock | None = None
        self.per_listener = False
        self.port_set = False  # `port`: the default listener is defined
        self.log_dests: list[str] = []

    def read(self, path: str) -> None:
        for number, raw in enumerate(read_text(path).splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            option, _, rest = line.partition(" ")
            self.option(f"{path}:{number}", option, rest.strip())

    def option(self, where: str, option: str, value: str) -> None:
        if option == "connection":
            self.finish_bridge()
            self.bridge = BridgeBlock(where, value, self.settings.warnings)
            return
        if option in BRIDGE_OPTIONS:
            if self.bridge is None:
                raise ConfigError(f"{where}: {option} outside a bridge (after 'connection')")
            self.bridge.option(where, option, value)
            return
        if option == "listener":
            self.finish_bridge()
        if not value and (option in _LISTENER_STRINGS or option in _LISTENER_BOOLS
                          or hasattr(self, f"_{option}")):
            raise ConfigError(f"{where}: {option} needs a value")
        if option in _LISTENER_STRINGS:
            self.target()[option] = value
            return
        if option in _LISTENER_BOOLS:
            self.target()[option] = conf_bool(where, option, value)
            return
        handler = getattr(self, f"_{option}", None)
        if handler is not None:
            handler(where, value)
        elif option in NOT_ACTED_ON:
            self.warn(where, f"{option} is not supported: {NOT_ACTED_ON[option]}")
        elif option in REFUSED or option.startswith(("auth_opt_", "plugin_opt_")):
            why = REFUSED.get(option, "options of mosquitto's plugins; plugins are not "
                                      "supported")
            raise ConfigError(f"{where}: {option} is not supported, and ignoring it would let "
                              f"in clients the file keeps out ({why})")
        elif option in OTHER_MOSQUITTO_OPTIONS:
            self.warn(where, f"{option} is not supported by mqlite; ignored")
        else:
            raise ConfigError(f"{where}: unknown option {option!r}")

    def finish_bridge(self) -> None:
        if self.bridge is not None:
            self.settings.bridges.append(self.bridge.finish())
            self.bridge = None

    def warn(self, where: str, text: str) -> None:
        self.settings.warnings.append(f"{where}: {text}")

    def target(self) -> dict[str, Any]:
        return self.listener if self.listener is not None else self.default_listener

    # -- listeners -------------------------------------------------------------------------

    def _listener(self, where: str, value: str) -> None:
        parts = value.split()
        if not 1 <= len(parts) <= 2:
            raise ConfigError(f"{where}: listener needs a port and an optional address")
        self.finish_listener()
        port = _int(where, "listener", parts[0])
        self.listener = {"port": port}
        self.listener_line = where
        if len(parts) == 2 and port == 0 and "/" in parts[1]:
            self.listener.update(type="unix", path=parts[1])
        elif len(parts) == 2:
            self.listener["host"] = parts[1]
        else:
            self.listener["host"] = ""  # every address, as mosquitto does

    def finish_listener(self) -> None:
        if self.listener is None:
            return
        values = self.listener
        self.listener = None
        self.settings.listeners.append(_make_listener(self.listener_line, values))

    def _port(self, where: str, value: str) -> None:
        self.settings.values["port"] = _int(where, "port", value)
        self.port_set = True

    def _bind_address(self, where: str, value: str) -> None:
        if self.listener is not None:
            self.listener["host"] = value
        else:
            self.settings.values["host"] = value

    def _socket_domain(self, where: str, value: str) -> None:
        if value not in ("ipv4", "ipv6"):
            raise ConfigError(f"{where}: socket_domain must be ipv4 or ipv6, not {value!r}")
        target = self.target()
        if target.get("host") == "":
            target["host"] = "0.0.0.0" if value == "ipv4" else "::"
        target["_domain"] = value

    def _protocol(self, where: str, value: str) -> None:
        if value not in ("mqtt", "websockets"):
            raise ConfigError(f"{where}: protocol must be mqtt or websockets, not {value!r}")
        self.target()["_websockets"] = value == "websockets"

    def _max_connections(self, where: str, value: str) -> None:
        self.target()["max_connections"] = _int(where, "max_connections", value)

    # -- broker settings -------------------------------------------------------------------

    def _max_keepalive(self, where: str, value: str) -> None:
        self.settings.values["max_keepalive"] = _int(where, "max_keepalive", value)

    def _max_packet_size(self, where: str, value: str) -> None:
        size = _int(where, "max_packet_size", value)
        self.settings.values["max_packet_size"] = size or PROTOCOL_MAX_PACKET_SIZE

    def _max_inflight_messages(self, where: str, value: str) -> None:
        count = _int(where, "max_inflight_messages", value) or 65_535
        self.settings.values["max_inflight"] = count
        self.settings.values["receive_maximum"] = count  # mosquitto's meaning, too

    def _max_queued_messages(self, where: str, value: str) -> None:
        count = _int(where, "max_queued_messages", value) or 1_000_000_000
        # mosquitto's limit is every client's, wherever the queue is held.
        self.settings.values["max_queued_messages"] = count
        self.settings.values["max_memory_queued_messages"] = count

    def _max_queued_bytes(self, where: str, value: str) -> None:
        size = _int(where, "max_queued_bytes", value) or 1 << 48
        self.settings.values["max_queued_bytes"] = size
        self.settings.values["max_memory_queued_bytes"] = size

    def _queue_qos0_messages(self, where: str, value: str) -> None:
        self.settings.values["queue_qos0"] = conf_bool(where, "queue_qos0_messages", value)

    def _retain_available(self, where: str, value: str) -> None:
        self.settings.values["retain_available"] = conf_bool(where, "retain_available", value)

    def _max_qos(self, where: str, value: str) -> None:
        self.settings.values["max_qos"] = _int(where, "max_qos", value)

    _maximum_qos = _max_qos

    def _sys_interval(self, where: str, value: str) -> None:
        self.settings.values["sys_interval"] = float(_int(where, "sys_interval", value))

    def _persistent_client_expiration(self, where: str, value: str) -> None:
        match = _DURATION.match(value)
        if match is None:
            raise ConfigError(f"{where}: persistent_client_expiration must be a number with "
                              f"h, d, w, m or y, not {value!r}")
        self.settings.values["session_expiry"] = (int(match.group(1))
                                                  * _UNIT_SECONDS[match.group(2)])

    def _upgrade_outgoing_qos(self, where: str, value: str) -> None:
        self.settings.values["upgrade_outgoing_qos"] = conf_bool(where, "upgrade_outgoing_qos",
                                                             value)

    def _allow_zero_length_clientid(self, where: str, value: str) -> None:
        self.settings.values["allow_zero_length_clientid"] = conf_bool(
            where, "allow_zero_length_clientid", value)

    def _message_size_limit(self, where: str, value: str) -> None:
        self.settings.values["message_size_limit"] = _int(where, "message_size_limit", value)

    def _max_inflight_bytes(self, where: str, value: str) -> None:
        self.settings.values["max_inflight_bytes"] = _int(where, "max_inflight_bytes", value)

    def _security(self, option: str, value: object) -> None:
        """With per_listener_settings, a listener's own; otherwise for every listener (as
        mosquitto applies them, wherever they are written)."""
        if self.per_listener and self.listener is not None:
            self.listener[option] = value
        else:
            self.settings.values[option] = value

    def _allow_anonymous(self, where: str, value: str) -> None:
        self._security("allow_anonymous", conf_bool(where, "allow_anonymous", value))

    def _password_file(self, where: str, value: str) -> None:
        self._security("password_file", value)

    def _acl_file(self, where: str, value: str) -> None:
        self._security("acl_file", value)

    def _per_listener_settings(self, where: str, value: str) -> None:
        self.per_listener = conf_bool(where, "per_listener_settings", value)
        self.settings.values["per_listener_settings"] = self.per_listener

    def _persistence(self, where: str, value: str) -> None:
        self.persistence = conf_bool(where, "persistence", value)

    def _persistence_location(self, where: str, value: str) -> None:
        self.location = value

    def _persistence_file(self, where: str, value: str) -> None:
        self.file = value

    def _connection_messages(self, where: str, value: str) -> None:
        self.settings.values["connection_messages"] = conf_bool(where, "connection_messages", value)

    def _log_dest(self, where: str, value: str) -> None:
        """Each line adds a destination, as in mosquitto; "none" means none at all."""
        kind, _, rest = value.partition(" ")
        if kind == "file":
            if not rest.strip():
                raise ConfigError(f"{where}: log_dest file needs a path")
            self.settings.values["log_file"] = rest.strip()
        elif kind == "dlt":
            raise ConfigError(f"{where}: log_dest dlt is not supported (use syslog or a file)")
        elif kind not in ("stderr", "stdout", "syslog", "topic", "none"):
            raise ConfigError(f"{where}: unknown log_dest {kind!r}")
        if kind == "none":
            self.log_dests = ["none"]
        elif kind not in self.log_dests:
            self.log_dests = [*(d for d in self.log_dests if d != "none"), kind]

    def _log_type(self, where: str, value: str) -> None:
        if value not in _LOG_TYPES:
            raise ConfigError(f"{where}: unknown log_type {value!r}")
        self.log_levels.append(_LOG_TYPES[value])

    def _include_dir(self, where: str, value: str) -> None:
        if not os.path.isdir(value):
            raise ConfigError(f"{where}: include_dir {value!r} is not a directory")
        for path in sorted(glob.glob(os.path.join(value, "*.conf"))):
            self.read(path)

    def finish(self) -> FileSettings:
        self.finish_bridge()
        self.finish_listener()
        values = self.settings.values
        defined = bool(self.settings.listeners or self.port_set or self.default_listener)
        if self.default_listener and not self.settings.listeners:
            default = dict(self.default_listener, port=values.get("port", 1883),
                           host=values.get("host", "127.0.0.1"))
            self.settings.listeners.append(_make_listener("the default listener", default))
        elif self.default_listener:
            self.settings.warnings.append("options before the first listener apply to the "
                                          "default listener, which listeners replace; ignored")
        if defined:  # mosquitto 2.0: listeners configured, anonymous clients refused
            if self.per_listener:
                for listener in self.settings.listeners:
                    if listener.allow_anonymous is None:
                        listener.allow_anonymous = False
            values.setdefault("allow_anonymous", False)
        if self.persistence:
            values["db"] = os.path.join(self.location, self.file)
        else:
            values["db"] = ":memory:"  # mosquitto keeps nothing without persistence true
        if self.log_levels:
            values["log_level"] = _LEVEL_NAMES[min(self.log_levels)]
        if self.log_dests:
            values["log_dest"] = ",".join(self.log_dests)
        return self.settings


def _make_listener(where: str, values: dict[str, Any]) -> ListenerConfig:
    websockets = values.pop("_websockets", False)
    values.pop("_domain", None)
    tls = bool(values.get("certfile"))
    if values.get("type") != "unix":
        values["type"] = ("wss" if tls else "ws") if websockets else ("tls" if tls else "tcp")
    if values.get("host") == "":
        values["host"] = "0.0.0.0"
    try:
        return ListenerConfig(**values)
    except ValueError as exc:
        raise ConfigError(f"{where}: listener: {exc}") from None


def _int(where: str, option: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{where}: {option} must be a whole number, not {value!r}") from None


def load_mosquitto_conf(path: str) -> FileSettings:
    reader = _Reader()
    reader.read(path)
    return reader.finish()
