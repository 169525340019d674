"""MQTT 5 enhanced authentication, the client's side: an :class:`Authenticator` answers the
broker's AUTH packets; :class:`ScramSha256` is the SCRAM-SHA-256 one.

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.enhanced_auth(ScramSha256("alice", "secret"))
    client.connect("broker.example.net")   # CONNECT carries the first message
    ...
    client.reauthenticate()                # AUTH 0x19: proves it again, while connected

The password never goes to the broker, and the client checks the broker's own proof (in the
CONNACK, or the AUTH 0x00 that ends a re-authentication): a broker without the user's keys is
disconnected from.
"""

from __future__ import annotations

from typing import Protocol

from mqlite.protocol.scram import METHOD, ScramClient, ScramError

__all__ = ["Authenticator", "ScramError", "ScramSha256"]


class Authenticator(Protocol):
    """One method's side of the exchange. Raise ScramError (or any exception) to give up."""

    method: str

    def start(self) -> bytes:
        """The first message: CONNECT's (or AUTH 0x19's) Authentication Data."""

    def step(self, data: bytes) -> bytes:
        """The answer to the broker's AUTH 0x18 (Continue authentication)."""

    def finish(self, data: bytes | None) -> None:
        """The broker's last word, in the CONNACK or the AUTH 0x00 that ends it."""


class ScramSha256:
    """SCRAM-SHA-256 (RFC 7677) against a broker that has the user's SCRAM credentials."""

    method = METHOD

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._exchange: ScramClient | None = None

    def start(self) -> bytes:
        self._exchange = ScramClient(self.username, self._password)  # a new nonce each time
        return self._exchange.first()

    def step(self, data: bytes) -> bytes:
        if self._exchange is None:
            raise ScramError("the broker continued an exchange that was not started")
        return self._exchange.final(data)

    def finish(self, data: bytes | None) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is None:
            raise ScramError("the broker ended an exchange that was not started")
        exchange.verify(data or b"")
