"""The daemon's configuration file: mqlite's own TOML, or mosquitto.conf syntax
(:mod:`~mqlite.broker.mosquitto_conf`) for any other file name. Both give the same
:class:`FileSettings`; the command line's flags then override them.

The TOML schema is one declared table that grows: top-level keys are every
:class:`~mqlite.broker.config.BrokerConfig` field and the daemon's own settings
(:data:`DAEMON_KEYS`), and ``[[listeners]]`` tables hold :class:`ListenerConfig` fields.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from typing import Any

from .config import BrokerConfig
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
                  "log_dest": ("stderr", "stdout", "file", "syslog"),
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
                if name != "listeners"}
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
        if key == "listeners":
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                raise ConfigError(f"{path}:{_line_of(text, None, 0, key)}: listeners must be "
                                  "[[listeners]] tables")
            for index, table in enumerate(value):
                settings.listeners.append(_listener(path, text, index, table))
            continue
        kind = BROKER_TYPES.get(key) or DAEMON_TYPES.get(key)
        where = f"{path}:{_line_of(text, None, 0, key)}"
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
        where = f"{path}:{_line_of(text, 'listeners', index, key)}"
        kind = LISTENER_TYPES.get(key)
        if kind is None:
            raise ConfigError(f"{where}: unknown key {key!r} in [[listeners]] number "
                              f"{index + 1}")
        try:
            values[key] = check_type(value, kind)
        except TypeError as exc:
            raise ConfigError(f"{where}: {key} must be {exc}, not {value!r} (in [[listeners]] "
                              f"number {index + 1})") from None
    try:
        return ListenerConfig(**values)
    except ValueError as exc:
        line = _line_of(text, "listeners", index, None)
        raise ConfigError(f"{path}:{line}: [[listeners]] number {index + 1}: {exc}") from None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")


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
