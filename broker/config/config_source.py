"""What a configuration file reader gives, and how it fails: shared by the TOML and the
mosquitto.conf readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..bridge.config import BridgeConfig
from .listener_config import ListenerConfig


class ConfigError(Exception):
    """A configuration that cannot be used; the message is one line naming where."""


@dataclass(slots=True)
class FileSettings:
    """What a file sets: values by key (BrokerConfig fields and DAEMON_KEYS), the listeners,
    and warnings about options read but not acted on."""

    values: dict[str, Any] = field(default_factory=dict)
    listeners: list[ListenerConfig] = field(default_factory=list)
    bridges: list[BridgeConfig] = field(default_factory=list)
    # The [cluster] table's keys (ClusterConfig fields), if it has one.
    cluster: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: {exc}") from None


def conf_bool(where: str, option: str, value: str) -> bool:
    """A mosquitto.conf boolean: ``true`` or ``false``, nothing else."""
    if value in ("true", "false"):
        return value == "true"
    raise ConfigError(f"{where}: {option} must be true or false, not {value!r}")
