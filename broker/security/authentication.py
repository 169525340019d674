"""The built-in authentication, a :class:`~mqlite.broker.hooks.Hook` like any user's:
mosquitto's ``allow_anonymous`` and ``password_file``, per listener (``per_listener_settings``)
or for all of them, and TLS identities (``use_identity_as_username``).

A client is anonymous when it gives no username (and no certificate gives it one). The
listener's ``allow_anonymous`` decides for it: by default false where any authentication is
configured for the listener (a password file, certificate identities, or a broker-wide SCRAM
file), true where none is. A client that authenticated with SCRAM-SHA-256 is not asked here. A
client with a username is checked against the password file; without a password file there is
nothing to check it against, and it counts as anonymous.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from ..config.broker_config import BrokerConfig
from ..config.listener_config import ListenerConfig
from ..hooks import ClientInfo, Hook
from .password_file import PasswordFile, PasswordFileError
from .per_listener import PerListener

log = logging.getLogger("mqlite.broker")


@dataclass(frozen=True, slots=True)
class Policy:
    """How one listener authenticates."""

    allow_anonymous: bool
    passwords: PasswordFile | None
    identity_usernames: bool  # the certificate's CN or subject is the username


def configured(config: BrokerConfig) -> bool:
    """Whether any listener authenticates (else the hook is not installed at all, and the
    broker's hot path stays hook-free)."""
    for listener in config.effective_listeners():
        allow, path = _settings(config, listener)
        # allow_anonymous = true alone checks nothing: every client is let in as without it.
        if (path is not None or allow is False or listener.use_identity_as_username
                or listener.use_subject_as_username or config.scram_file is not None):
            return True
    return False


def allows_anonymous(config: BrokerConfig, listener: ListenerConfig) -> bool:
    """Whether ``listener`` lets clients in without a username (what ``--check`` shows)."""
    allow, path = _settings(config, listener)
    if allow is not None:
        return allow
    identity = listener.use_identity_as_username or listener.use_subject_as_username
    return path is None and not identity and config.scram_file is None


def open_beyond_loopback(config: BrokerConfig) -> list[str]:
    """A warning for each listener that lets anonymous clients in from other hosts without
    the configuration saying so (no allow_anonymous given, nothing authenticates)."""
    warnings = []
    for listener in config.effective_listeners():
        if listener.type in ("unix", "http") or _loopback(listener.host):
            continue
        allow, path = _settings(config, listener)
        if allow is not None or path is not None or config.scram_file is not None:
            continue
        if listener.use_identity_as_username or listener.use_subject_as_username:
            continue
        warnings.append(f"listener {listener.name or listener.type} on {listener.host or '*'} "
                        f"lets anonymous clients in from other hosts; configure a "
                        f"password_file, or set allow_anonymous = true to mean it")
    return warnings


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to


def _settings(config: BrokerConfig, listener: ListenerConfig) -> tuple[bool | None, str | None]:
    """(allow_anonymous, password_file) that apply to ``listener``."""
    if config.per_listener_settings:
        return listener.allow_anonymous, listener.password_file
    return config.allow_anonymous, config.password_file


class PasswordAuthentication(Hook):
    # A password not checked before costs a PBKDF2 hash: on a worker thread, not the loop.
    blocking = True

    def __init__(self, config: BrokerConfig) -> None:
        self.policies: PerListener[Policy] = PerListener()
        self._closed = Policy(False, None, False)
        self.configure(config)

    def configure(self, config: BrokerConfig) -> None:
        """Load every password file the configuration names; PasswordFileError (and nothing
        changed) if one cannot be used. ``bind()`` then names the listeners."""
        files: dict[str, PasswordFile] = {}
        by_listener: list[tuple[ListenerConfig, Policy]] = []
        for listener in config.effective_listeners():
            allow, path = _settings(config, listener)
            passwords = None
            if path is not None:
                if path not in files:
                    files[path] = PasswordFile.load(path)
                passwords = files[path]
            identity = listener.use_identity_as_username or listener.use_subject_as_username
            if allow is None:  # mosquitto 2.0: closed once anything authenticates
                allow = passwords is None and not identity and config.scram_file is None
            by_listener.append((listener, Policy(allow, passwords, identity)))
        for passwords in files.values():
            for warning in passwords.warnings:
                log.warning("%s", warning)
        self.policies.decide(by_listener)

    def bind(self, listeners: dict[str, ListenerConfig]) -> None:
        self.policies.bind(listeners)

    def reload(self, config: BrokerConfig) -> None:
        """On SIGHUP: a password file that cannot be read keeps the old ones."""
        try:
            self.configure(config)
        except PasswordFileError as exc:
            log.error("reload: %s; keeping the password files loaded before", exc)

    def quick_answer(self, client: ClientInfo, username: str | None,
                     password: bytes | None) -> bool | None:
        """Everything but a password not verified before whose hash is costly (None: it is
        hashed on a worker thread)."""
        policy = self.policies.by_name.get(client.listener, self._closed)  # unknown: refused
        if policy.identity_usernames and client.peer_certificate is not None:
            return True  # TLS verified the certificate that names the client
        passwords = policy.passwords
        if username is None or passwords is None:
            return policy.allow_anonymous
        if password is None:
            return False
        if passwords.verified(username, password) or passwords.cheap_to_check(username):
            return passwords.check(username, password)
        return None

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        """On a worker thread: the full check, hashing the password."""
        answer = self.quick_answer(client, username, password)
        if answer is not None:
            return answer
        policy = self.policies.by_name.get(client.listener, self._closed)
        assert policy.passwords is not None  # else quick_answer answered
        return policy.passwords.check(username, password)
