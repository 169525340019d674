"""The daemon's configuration file: mqlite's own TOML, or mosquitto.conf syntax
(:mod:`~mqlite.broker.config.mosquitto_conf`) for any other file name. Both give the same
:class:`FileSettings`; the command line's flags then override them.

The TOML schema is one declared table that grows: top-level keys are every
:class:`~mqlite.broker.config.broker_config.BrokerConfig` field and the daemon's own settings
(:data:`DAEMON_KEYS`), and ``[[listeners]]`` tables hold :class:`ListenerConfig` fields.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from typing import Any

from ..bridge.config import BridgeConfig, BridgeTLS, BridgeTopic
from ..cluster.config import ClusterConfig
from .broker_config import BrokerConfig
from .config_source import ConfigError, FileSettings, read_text
from .listener_config import ListenerConfig
from .mosquitto_conf import load_mosquitto_conf

__all__ = ["ConfigError", "FileSettings", "load"]

# Settings of the daemon rather than of the broker's protocol logic, with their defaults.
DAEMON_KEYS: dict[str, Any] = {
    "db": "mqlite.db",  # SQLite file; ":memory:" keeps nothing
    "sync": "full",  # full | normal
    "log_level": "info",  # debug | info | warning | error
    "log_dest": "stderr",  # stderr | stdout | file | syslog
    "log_file": None,  # the file, with log_dest = "file"
    "log_format": "text",  # text | json
    "connection_messages": True,  # a log line per client connect and disconnect
}
DAEMON_CHOICES = {"sync": ("full", "normal"), "log_level": ("debug", "info", "warning", "error"),
                  "log_dest": ("stderr", "stdout", "file", "syslog", "topic", "none"),
                  "log_format": ("text", "json")}


def load(path: str) -> FileSettings:
    """Read ``path``: TOML if it ends in .toml, mosquitto.conf syntax otherwise."""
    if path.endswith(".toml"):
        return load_toml(path)
    return load_mosquitto_conf(path)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


BROKER_TYPES = {name: kind for name, kind in _field_types(BrokerConfig).items()
                if name not in ("listeners", "bridges", "cluster")}
CLUSTER_TYPES = _field_types(ClusterConfig)
LISTENER_TYPES = _field_types(ListenerConfig)
DAEMON_TYPES: dict[str, Any] = {"db": str, "sync": str, "log_level": str, "log_dest": str,
                                "log_file": str | None, "log_format": str,
                                "connection_messages": bool}


def type_name(kind: Any) -> str:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    base = args[0] if args else kind
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[base]


def check_type(value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` (an int where a float is expected is fine); TypeError if not."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    for option in options:
        if option is type(None):
            continue
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (bool, str) and isinstance(value, option):
            return value
    raise TypeError(type_name(kind))


def load_toml(path: str) -> FileSettings:
    text = read_text(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    settings = FileSettings()
    for key, value in document.items():
        if key in ("listeners", "bridges"):
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                raise ConfigError(f"{path}:{_line_of(text, None, 0, key)}: {key} must be "
                                  f"[[{key}]] tables")
            for index, table in enumerate(value):
                if key == "listeners":
                    settings.listeners.append(_listener(path, text, index, table))
                else:
                    settings.bridges.append(_bridge(path, text, index, table))
            continue
        where = f"{path}:{_line_of(text, None, 0, key)}"
        if key == "cluster":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: cluster must be a [cluster] table")
            settings.cluster = _typed(value, CLUSTER_TYPES,
                                      f"{path}:{_line_of(text, 'cluster', 0, None)}",
                                      "[cluster]")
            continue
        kind = BROKER_TYPES.get(key) or DAEMON_TYPES.get(key)
        if kind is None:
            if isinstance(value, dict):
                raise ConfigError(f"{where}: unknown table [{key}]")
            raise ConfigError(f"{where}: unknown key {key!r}")
        try:
            settings.values[key] = check_type(value, kind)
        except TypeError as exc:
            raise ConfigError(f"{where}: {key} must be {exc}, not {value!r}") from None
    return settings


def _listener(path: str, text: str, index: int, table: dict[str, Any]) -> ListenerConfig:
    values: dict[str, Any] = {}
    for key, value in table.items():
        line = f"{path}:{_line_of(text, 'listeners', index, key)}"
        values.update(_typed({key: value}, LISTENER_TYPES, line,
                             f"[[listeners]] number {index + 1}"))
    try:
        return ListenerConfig(**values)
    except ValueError as exc:
        at = _line_of_complaint(text, "listeners", index, table, str(exc))
        raise ConfigError(f"{path}:{at}: [[listeners]] number {index + 1}: {exc}") \
            from None


# A bridge's keys and their types; topics, tls and restart_timeout are read by _bridge.
_BRIDGE_TYPES: dict[str, Any] = {
    "name": str, "protocol": int, "client_id": str, "local_client_id": str,
    "clean_start": bool, "username": str | None, "password": str | None,
    "password_file": str | None, "keepalive": int, "try_private": bool, "round_robin": bool,
    "window": int, "notifications": bool, "notification_topic": str | None,
    "notifications_local_only": bool, "start_type": str, "idle_timeout": float,
    "threshold": int}
_TOPIC_TYPES: dict[str, Any] = {"pattern": str, "direction": str, "qos": int,
                                "local_prefix": str, "remote_prefix": str}
_TLS_TYPES: dict[str, Any] = {"cafile": str | None, "capath": str | None,
                              "certfile": str | None, "keyfile": str | None, "insecure": bool}


def _bridge(path: str, text: str, index: int, table: dict[str, Any]) -> BridgeConfig:
    """One [[bridges]] table; a ConfigError names the key (or the table) that is wrong."""
    header = f"{path}:{_line_of(text, 'bridges', index, None)}"
    where = f"[[bridges]] number {index + 1}"
    values: dict[str, Any] = {}
    for key, value in table.items():
        line = f"{path}:{_line_of(text, 'bridges', index, key)}"
        if key in ("address", "addresses"):
            addresses = [value] if isinstance(value, str) else value
            if (not isinstance(addresses, list) or not addresses
                    or not all(isinstance(a, str) for a in addresses)):
                raise ConfigError(f"{line}: {key} must be \"host:port\" or a list of them "
                                  f"(in {where})")
            values["addresses"] = tuple(addresses)
        elif key == "topics":
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                raise ConfigError(f"{line}: topics must be a list of tables such as "
                                  f"{{ pattern = \"a/#\", direction = \"out\" }} (in {where})")
            values["topics"] = tuple(_topic(t, line, f"topic number {number} of {where}")
                                     for number, t in enumerate(value, start=1))
        elif key == "tls":
            if not isinstance(value, dict):
                raise ConfigError(f"{line}: tls must be a table such as "
                                  f"{{ cafile = \"ca.crt\" }} (in {where})")
            values["tls"] = BridgeTLS(**_typed(value, _TLS_TYPES, line, f"tls of {where}"))
        elif key == "restart_timeout":
            if (not isinstance(value, list) or len(value) != 2 or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
                raise ConfigError(f"{line}: restart_timeout must be [base, cap] in seconds, "
                                  f"not {value!r} (in {where})")
            values["restart_timeout"] = (float(value[0]), float(value[1]))
        else:
            values.update(_typed({key: value}, _BRIDGE_TYPES, line, where))
    try:
        return BridgeConfig(**values)
    except TypeError as exc:  # a required key missing
        missing = str(exc).rpartition(":")[2].strip()
        raise ConfigError(f"{header}: {where} needs {missing}") from None
    except ValueError as exc:
        at = _line_of_complaint(text, "bridges", index, table, str(exc))
        raise ConfigError(f"{path}:{at}: {where}: {exc}") from None


def _topic(table: dict[str, Any], line: str, where: str) -> BridgeTopic:
    try:
        return BridgeTopic(**_typed(table, _TOPIC_TYPES, line, where))
    except TypeError:
        raise ConfigError(f"{line}: {where} needs a pattern") from None
    except ValueError as exc:
        raise ConfigError(f"{line}: {where}: {exc}") from None


def _typed(table: dict[str, Any], types_of: dict[str, Any], line: str,
           where: str) -> dict[str, Any]:
    """``table``'s values checked against ``types_of``; ConfigError at the first wrong one."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = types_of.get(key)
        if kind is None:
            raise ConfigError(f"{line}: unknown key {key!r} in {where}")
        try:
            values[key] = check_type(value, kind)
        except TypeError as exc:
            raise ConfigError(f"{line}: {key} must be {exc}, not {value!r} (in {where})") \
                from None
    return values


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")


def _line_of_complaint(text: str, table: str, index: int, keys: dict[str, Any],
                       complaint: str) -> int | str:
    """The line of the key a complaint is about: the key it starts with, else the first key
    of the table it names, else the table's header."""
    words = re.findall(r"[a-z_]+", complaint)
    named = [key for key in keys if key in words]
    first = words[0] if words and words[0] in keys else (named[0] if named else None)
    return _line_of(text, table, index, first)


def _line_of(text: str, table: str | None, index: int, key: str | None) -> int | str:
    """The line of ``key`` in the top level (table None) or in the index-th ``[[table]]``
    (key None: the table's header); "?" if not found. tomllib reports no positions."""
    current: str | None = None
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2)
            seen[name] = seen.get(name, -1) + 1
            current = name
            if key is None and name == table and seen[name] == index:
                return number
            continue
        in_place = (current is None and table is None) or (
            current is not None and current == table and seen.get(current, -1) == index)
        if in_place and key is not None and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', line):
            return number
    return "?"
