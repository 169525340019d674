"""MQTT 5 enhanced authentication (AUTH packets), with SCRAM-SHA-256 as the method:

    CONNECT (method, client-first)  ->  AUTH 0x18 (server-first)
    AUTH 0x18 (client-final)        ->  CONNACK 0x00 (server-final), or a refusal
    AUTH 0x19 (client-first)        ->  AUTH 0x18 (server-first)        re-authentication,
    AUTH 0x18 (client-final)        ->  AUTH 0x00 (server-final)        while connected

A failed re-authentication ends the connection with DISCONNECT 0x87. Re-authentication keeps
the identity: it must be as the same user.
"""

from __future__ import annotations

import logging

from mqlite.protocol import Auth, Connack, Disconnect, Packet, Properties, ReasonCode
from mqlite.protocol.scram import ScramError, ScramServer

from ...security.scram_auth import METHODS
from ..auth_exchange import Exchange, Outcome
from ..connection import Connection
from ..services import BrokerServices, Context

log = logging.getLogger("mqlite.broker")

def offered(broker: BrokerServices, method: str) -> bool:
    """Whether the broker can authenticate with ``method``."""
    return broker.scram is not None and method in METHODS


def start(broker: BrokerServices, conn: Connection, method: str, data: bytes | None,
          then: Outcome, now: float) -> None:
    """CONNECT named an offered method: answer its client-first message."""
    exchange = Exchange(method, ScramServer(), then)
    failure = _server_first(broker, conn, exchange, data, "")
    if failure:
        then(None, b"", failure, now)


def _server_first(broker: BrokerServices, conn: Connection, exchange: Exchange,
                  data: bytes | None, required_user: str) -> str:
    """Send the server-first message; or why the client-first message is refused."""
    scram = broker.scram
    assert scram is not None
    try:
        username = exchange.server.read_first(data or b"")
    except ScramError as exc:
        return f"{exchange.method}: {exc}"
    if required_user and username != required_user:
        return f"re-authentication as {username!r}, not as {required_user!r}"
    server_first = exchange.server.first(scram.credentials(username),
                                         scram.unknown_salt(username))
    conn.auth_exchange = exchange
    conn.send(Auth(reason_code=ReasonCode.CONTINUE_AUTHENTICATION, properties=Properties(
        authentication_method=exchange.method, authentication_data=server_first)))
    return ""


def before_connack(broker: BrokerServices, conn: Connection, packet: Packet,
                   now: float) -> None:
    """A packet while CONNECT's exchange is in progress: only AUTH may come."""
    exchange = conn.auth_exchange
    assert exchange is not None and exchange.then is not None
    broker.stats.control_packets_received += 1
    if isinstance(packet, Disconnect):
        conn.close("client disconnected during authentication")
        return
    failure = _protocol_failure(exchange, packet)
    if failure:
        conn.auth_exchange = None
        conn.send(Connack(reason_code=ReasonCode.PROTOCOL_ERROR))
        broker.stats.refusal("protocol_error")
        conn.close(failure)
        log.info("connection from %s refused: %s", conn.peer, failure)
        return
    assert isinstance(packet, Auth)
    conn.auth_exchange = None
    try:
        server_final = exchange.server.final(packet.properties.authentication_data or b"")
    except ScramError as exc:
        exchange.then(None, b"", f"{exchange.method} as {exchange.server.username!r}: {exc}",
                      now)
        return
    exchange.then(exchange.server.username, server_final, "", now)


def _protocol_failure(exchange: Exchange | None, packet: Packet) -> str:
    """Why ``packet`` breaks the exchange's protocol ("" if it does not)."""
    if not isinstance(packet, Auth):
        return f"{type(packet).__name__.upper()} during authentication"
    if exchange is None:
        return "AUTH 0x18 with no authentication in progress"
    if packet.reason_code != ReasonCode.CONTINUE_AUTHENTICATION:
        return f"AUTH with reason code 0x{packet.reason_code:02X} during authentication"
    if packet.properties.authentication_method != exchange.method:
        return "AUTH with another authentication method [MQTT-4.12.0-5]"
    return ""


def handle_auth(context: Context, packet: Auth) -> None:
    """While connected: re-authentication [MQTT-4.12.1]."""
    broker, conn = context.broker, context.conn
    broker.stats.control_packets_received += 1
    info = conn.client_info
    method = info.auth_method if info is not None else None
    if info is None or method is None:
        broker.drop(conn, "AUTH from a client that connected without an authentication "
                    "method", ReasonCode.PROTOCOL_ERROR)
        return
    if packet.properties.authentication_method != method:
        broker.drop(conn, "AUTH with another authentication method [MQTT-4.12.0-5]",
                    ReasonCode.PROTOCOL_ERROR)
        return
    if packet.reason_code == ReasonCode.RE_AUTHENTICATE:
        if conn.auth_exchange is not None:
            broker.drop(conn, "re-authentication while one is in progress",
                        ReasonCode.PROTOCOL_ERROR)
            return
        failure = _server_first(broker, conn, Exchange(method, ScramServer(), None),
                                packet.properties.authentication_data, info.username or "")
        if failure:
            _reauthentication_failed(context, failure)
        return
    exchange = conn.auth_exchange
    failure = _protocol_failure(exchange, packet)
    if failure:
        broker.drop(conn, failure, ReasonCode.PROTOCOL_ERROR)
        return
    assert exchange is not None
    conn.auth_exchange = None
    try:
        server_final = exchange.server.final(packet.properties.authentication_data or b"")
    except ScramError as exc:
        _reauthentication_failed(context, str(exc))
        return
    conn.send(Auth(reason_code=ReasonCode.SUCCESS, properties=Properties(
        authentication_method=method, authentication_data=server_final)))
    log.info("client %s re-authenticated (%s)", conn.client_id, method,
             extra={"event": "reauthenticated", "client_id": conn.client_id})


def _reauthentication_failed(context: Context, why: str) -> None:
    context.conn.publish_will = True  # the client did not leave of its own accord
    context.broker.drop(context.conn, f"re-authentication failed: {why}",
                        ReasonCode.NOT_AUTHORIZED)
