"""MQTT 5 enhanced authentication with SCRAM-SHA-256, against a ``scram_file``: one
``user:SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY`` line per user (RFC 5803's format,
written by ``mqlite passwd --scram``). The file holds no password and nothing that logs in.

A user not in the file gets an exchange like any other, with a salt derived from its name and
a secret of this process, and fails at the proof: the exchange does not say who exists.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from mqlite.protocol.scram import METHOD, SALT_BYTES, ScramCredentials, parse_credentials

from ..config.broker_config import BrokerConfig
from .password_file import PasswordFileError, read_user_file

log = logging.getLogger("mqlite.broker")

METHODS = (METHOD,)


class ScramFile:
    def __init__(self, path: str, users: dict[str, ScramCredentials],
                 warnings: list[str]) -> None:
        self.path = path
        self.users = users
        self.warnings = warnings

    @classmethod
    def load(cls, path: str) -> ScramFile:
        """PasswordFileError naming the file and line when it cannot be used."""
        users, warnings = read_user_file(path, "SCRAM file", parse_credentials)
        return cls(path, users, warnings)


class ScramAuthentication:
    """The broker's SCRAM users; ``reload()`` on SIGHUP keeps them if the file is broken."""

    def __init__(self, config: BrokerConfig) -> None:
        assert config.scram_file is not None
        self.file = self._load(config.scram_file)
        self._secret = secrets.token_bytes(32)

    @staticmethod
    def _load(path: str) -> ScramFile:
        loaded = ScramFile.load(path)
        for warning in loaded.warnings:
            log.warning("%s", warning)
        return loaded

    def reload(self, config: BrokerConfig) -> None:
        if config.scram_file is None:
            self.file = ScramFile("", {}, [])  # no longer configured: nobody gets in by it
            return
        try:
            self.file = self._load(config.scram_file)
        except PasswordFileError as exc:
            log.error("reload: %s; keeping the SCRAM users loaded before", exc)

    def credentials(self, username: str) -> ScramCredentials | None:
        return self.file.users.get(username)

    def unknown_salt(self, username: str) -> bytes:
        """A made-up salt for a user not in the file: the same for the same name."""
        return hmac.digest(self._secret, username.encode(), hashlib.sha256)[:SALT_BYTES]
