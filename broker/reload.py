"""Applying a new configuration to a running broker without dropping connections: the limits
for every connection from now on, listeners opened and closed by difference, and fresh TLS
contexts (certificates renewed on disk) for the connections accepted from now on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .config.broker_config import BrokerConfig
from .config.listener_config import ListenerConfig
from .engine import packet_log
from .net.listeners import Listener, ListenerError, open_listener, tls_context

if TYPE_CHECKING:
    from .net.loop import EventLoop

log = logging.getLogger("mqlite.broker")


def _key(config: ListenerConfig) -> object:
    """What identifies a listener across reloads: its name, or where it listens."""
    return config.name or (config.type, config.host, config.port, config.path)


def apply_config(loop: EventLoop, new: BrokerConfig) -> None:
    """On the loop's thread. A listener that cannot be opened is logged and left out; the
    rest of the new configuration applies."""
    loop.core.config = new
    loop.config = new
    packet_log.refresh()  # the log level may have changed with the configuration
    wanted = {_key(config): config for config in new.effective_listeners()}
    for listener in list(loop.listeners):
        config = wanted.get(_key(listener.config))
        if config == listener.config:
            wanted.pop(_key(config))
            if config.tls:
                _renew_tls(listener)
            continue
        loop.remove_listener(listener)
        log.info("reload: closed listener %s (%s)", listener.name, listener.where())
    for config in wanted.values():
        try:
            listener = open_listener(config)
        except ListenerError as exc:
            log.error("reload: %s", exc)
            continue
        loop.add_listener(listener)
        log.info("reload: listening on %s (%s)", listener.where(), listener.name)


def _renew_tls(listener: Listener) -> None:
    try:
        listener.tls = tls_context(listener.config)
    except ListenerError as exc:
        log.error("reload: %s; keeping the certificates loaded before", exc)
