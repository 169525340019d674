"""Which ``$SYS`` topics a client may publish to: only its own connection state, as a bridge
does with ``notifications true`` (mosquitto's default: ``$SYS/broker/connection/<client
id>/state``, and its will there). The rest of ``$SYS`` is the broker's own."""

from __future__ import annotations

CONNECTION_PREFIX = "$SYS/broker/connection/"


def own_sys_topic(topic: str, client_id: str | None) -> bool:
    """Whether ``topic`` lies under ``$SYS/broker/connection/<client_id>/``."""
    return client_id is not None and topic.startswith(f"{CONNECTION_PREFIX}{client_id}/")
