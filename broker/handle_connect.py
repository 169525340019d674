"""CONNECT: validation, every CONNACK code, client ids, take-over, clean start, resumption."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from mqlite.protocol import (
    Connack,
    ConnackReturnCode,
    Connect,
    Properties,
    ReasonCode,
    encode_within,
)

from .config import NEVER_EXPIRES
from .connection import CONNECTED, VERSION_NAMES, Connection
from .delivery import pump, resend_inflight
from .hooks import Access, ClientInfo
from .session import Session
from .sys_topics import own_sys_topic

if TYPE_CHECKING:
    from .services import BrokerServices

log = logging.getLogger("mqlite.broker")


def _refuse(core: BrokerServices, conn: Connection, v3_code: int, v5_code: int, why: str) -> None:
    """CONNACK with a refusal, then close [MQTT-3.2.2-5] [MQTT-3.2.2-7]; nothing the client
    sent after this CONNECT is processed [MQTT-3.1.4-5]."""
    conn.send(Connack(reason_code=v5_code if conn.version == 5 else v3_code))
    conn.close(why)
    log.info("connection from %s refused: %s", conn.peer, why)


def _assign_client_id(core: BrokerServices) -> str:
    while True:
        client_id = f"mqlite-{secrets.token_hex(8)}"
        if client_id not in core.sessions:
            return client_id


def handle_connect(core: BrokerServices, conn: Connection, packet: Connect, now: float) -> None:
    config = core.config
    level = packet.protocol_version
    conn.version = level
    conn.bridge = packet.bridge
    props = packet.properties
    if level == 5:  # before any CONNACK: it too must fit [MQTT-3.1.2-24]
        conn.client_max_packet_size = props.maximum_packet_size
    if level == 3 and not 1 <= len(packet.client_id) <= 23:  # MQTT 3.1 section 3.1
        _refuse(core, conn, ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                f"MQTT 3.1 client id of {len(packet.client_id)} characters (1 to 23 allowed)")
        return
    if props.authentication_method is not None:
        _refuse(core, conn, 0, ReasonCode.BAD_AUTHENTICATION_METHOD,
                f"unsupported authentication method {props.authentication_method!r}")
        return
    client_id = packet.client_id
    assigned = False
    if not client_id:
        if level == 4 and not packet.clean_start:  # [MQTT-3.1.3-8]
            _refuse(core, conn, ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                    "empty client id with clean session 0")
            return
        client_id = _assign_client_id(core)  # [MQTT-3.1.3-6]
        assigned = True
    keepalive = packet.keep_alive
    server_keepalive = None
    limit = config.max_keepalive
    if limit is not None and (keepalive == 0 or keepalive > limit):
        if level < 5:
            _refuse(core, conn, ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                    f"keep alive {keepalive} over the broker's maximum of {limit}")
            return
        keepalive = server_keepalive = limit
    will = packet.will
    if will is not None:
        if will.qos > config.max_qos:
            _refuse(core, conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.QOS_NOT_SUPPORTED,
                    f"will QoS {will.qos} over the broker's maximum")
            return
        if will.retain and not config.retain_available:
            _refuse(core, conn, ConnackReturnCode.NOT_AUTHORIZED,
                    ReasonCode.RETAIN_NOT_SUPPORTED, "retained will, and retain is off")
            return
        if will.topic.startswith("$") and not own_sys_topic(will.topic, client_id):
            _refuse(core, conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                    f"will topic {will.topic!r} is reserved")
            return
    if level == 5:
        conn.client_receive_maximum = props.receive_maximum or 65_535
        conn.topic_alias_maximum = props.topic_alias_maximum or 0
        conn.problem_information = props.request_problem_information != 0
        expiry = props.session_expiry_interval or 0
    else:
        expiry = 0 if packet.clean_start else (config.session_expiry or NEVER_EXPIRES)

    info = ClientInfo(client_id=client_id, peer=conn.peer, listener=conn.listener,
                      protocol_version=level, username=packet.username)
    if core.hooks.active:
        if not core.hooks.authenticate(info, packet.username, packet.password):
            _refuse(core, conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                    "not authorized (authentication hook)")
            return
        if will is not None and not core.hooks.allowed(info, will.topic, Access.WRITE):
            _refuse(core, conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                    f"will topic {will.topic!r} not allowed (access hook)")
            return
    properties = Properties()
    if level == 5:
        properties = Properties(
            assigned_client_identifier=client_id if assigned else None,
            server_keep_alive=server_keepalive,
            receive_maximum=config.receive_maximum if config.receive_maximum < 65_535 else None,
            maximum_packet_size=config.max_packet_size,
            topic_alias_maximum=config.topic_alias_maximum or None,
            maximum_qos=config.max_qos if config.max_qos < 2 else None,
            retain_available=None if config.retain_available else 0,
        )
    # Whether the CONNACK fits (session present is a flag: it changes no size) is known now,
    # before any session is taken over or created.
    limit = conn.client_max_packet_size
    if limit is not None and encode_within(Connack(properties=properties), 5, limit) is None:
        conn.close(f"CONNACK does not fit the client's Maximum Packet Size {limit}")
        log.info("connection from %s refused: %s", conn.peer, conn.close_reason)
        return
    session = core.sessions.get(client_id)
    if session is not None and session.connection is not None:
        # Take-over [MQTT-3.1.4-2]: the old connection ends as if the network failed.
        core.drop(session.connection, "session taken over", ReasonCode.SESSION_TAKEN_OVER)
        session = core.sessions.get(client_id)
    if session is not None and packet.clean_start:
        core.end_session(session)
        session = None
    session_present = session is not None
    if session is None:
        session = Session(client_id, level, expiry)
        core.sessions[client_id] = session
    was_persistent = session.persistent
    session.protocol_version = level
    session.expiry_interval = expiry
    session.will = will
    core.attach(conn, session)
    conn.client_info = session.client_info = info
    conn.client_id = client_id
    conn.state = CONNECTED
    conn.keepalive = keepalive
    conn.deadline = now + 1.5 * keepalive if keepalive else 0.0
    conn.reader.max_packet_size = config.max_packet_size
    if session.persistent:
        core.save_session(session)
    elif was_persistent:
        core.store.delete_session(client_id)

    # MQTT 3.1's CONNACK has no session present flag: its first byte is reserved.
    conn.send(Connack(session_present=session_present and level > 3, properties=properties))
    if core.hooks.active:
        core.hooks.notify("on_connect", info)
    log.info("%s %s connected from %s (MQTT %s, %s, keep alive %ds)",
             "bridge" if conn.bridge else "client", client_id, conn.peer, VERSION_NAMES[level],
             "resumed session" if session_present else "new session", keepalive)
    if session_present:
        resend_inflight(core, session, conn, now)
        pump(core, session, now)
