"""The built-in access control, a :class:`~mqlite.broker.hooks.Hook`: mosquitto's
``acl_file`` (see :mod:`~mqlite.broker.security.acl_file`), for every listener or, with
``per_listener_settings``, each listener's own. Checked at SUBSCRIBE, at each delivery (and
again when a queued one goes out), at PUBLISH, for wills and for retained messages."""

from __future__ import annotations

import logging

from ..config.broker_config import BrokerConfig
from ..config.listener_config import ListenerConfig
from ..hooks import Access, ClientInfo, Hook
from .acl_file import AclFile, AclFileError
from .per_listener import PerListener

log = logging.getLogger("mqlite.broker")


def acl_path(config: BrokerConfig, listener: ListenerConfig) -> str | None:
    return listener.acl_file if config.per_listener_settings else config.acl_file


def configured(config: BrokerConfig) -> bool:
    return any(acl_path(config, listener) for listener in config.effective_listeners())


class AccessControl(Hook):
    def __init__(self, config: BrokerConfig) -> None:
        self.acls: PerListener[AclFile | None] = PerListener()
        self.configure(config)

    def configure(self, config: BrokerConfig) -> None:
        """Load every ACL file named; AclFileError (nothing changed) if one cannot be used."""
        files: dict[str, AclFile] = {}
        by_listener: list[tuple[ListenerConfig, AclFile | None]] = []
        for listener in config.effective_listeners():
            path = acl_path(config, listener)
            if path is not None and path not in files:
                files[path] = AclFile.load(path)
            by_listener.append((listener, files[path] if path else None))
        self.acls.decide(by_listener)

    def bind(self, listeners: dict[str, ListenerConfig]) -> None:
        self.acls.bind(listeners)

    def reload(self, config: BrokerConfig) -> None:
        try:
            self.configure(config)
        except AclFileError as exc:
            log.error("reload: %s; keeping the ACL files loaded before", exc)

    def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
        if not client.listener:
            # A session restored from the store whose client has not come back: who it is
            # is known again at its CONNECT; each delivery is checked when it goes out.
            return True
        acls = self.acls.by_name
        if client.listener not in acls:
            return False  # a listener this configuration does not know: nothing is allowed
        acl = acls[client.listener]
        if acl is None:
            return True  # no ACL on this listener
        return acl.allows(client.client_id, client.username, topic,
                          "read" if access is Access.READ else "write")
