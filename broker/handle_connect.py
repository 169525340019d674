"""A connection's life: CONNECT (validation, every CONNACK code, client ids; then the
registry's take-over, clean start or resumption), PINGREQ, DISCONNECT and AUTH."""

from __future__ import annotations

import logging

from mqlite.protocol import (
    Auth,
    Connack,
    ConnackReturnCode,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    ReasonCode,
    encode_within,
)

from .config import NEVER_EXPIRES
from .connection import CONNECTED, VERSION_NAMES, Connection
from .delivery import pump, resend_inflight
from .hooks import Access, ClientInfo
from .services import BrokerServices, Context
from .sys_topics import own_sys_topic

log = logging.getLogger("mqlite.broker")


def _refuse(conn: Connection, v3_code: int, v5_code: int, why: str) -> None:
    """CONNACK with a refusal, then close [MQTT-3.2.2-5] [MQTT-3.2.2-7]; nothing the client
    sent after this CONNECT is processed [MQTT-3.1.4-5]."""
    conn.send(Connack(reason_code=v5_code if conn.version == 5 else v3_code))
    conn.close(why)
    log.info("connection from %s refused: %s", conn.peer, why)


def handle_connect(broker: BrokerServices, conn: Connection, packet: Connect,
                   now: float) -> None:
    config = broker.config
    level = packet.protocol_version
    conn.version = level
    conn.bridge = packet.bridge
    props = packet.properties
    if level == 5:  # before any CONNACK: it too must fit [MQTT-3.1.2-24]
        conn.client_max_packet_size = props.maximum_packet_size
    if level == 3 and not 1 <= len(packet.client_id) <= 23:  # MQTT 3.1 section 3.1
        _refuse(conn, ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                f"MQTT 3.1 client id of {len(packet.client_id)} characters (1 to 23 allowed)")
        return
    if props.authentication_method is not None:
        _refuse(conn, 0, ReasonCode.BAD_AUTHENTICATION_METHOD,
                f"unsupported authentication method {props.authentication_method!r}")
        return
    client_id = packet.client_id
    assigned = False
    if not client_id:
        if level == 4 and not packet.clean_start:  # [MQTT-3.1.3-8]
            _refuse(conn, ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                    "empty client id with clean session 0")
            return
        client_id = broker.sessions.new_client_id()  # [MQTT-3.1.3-6]
        assigned = True
    keepalive = packet.keep_alive
    server_keepalive = None
    limit = config.max_keepalive
    if limit is not None and (keepalive == 0 or keepalive > limit):
        if level < 5:
            _refuse(conn, ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                    f"keep alive {keepalive} over the broker's maximum of {limit}")
            return
        keepalive = server_keepalive = limit
    will = packet.will
    if will is not None:
        if will.qos > config.max_qos:
            _refuse(conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.QOS_NOT_SUPPORTED,
                    f"will QoS {will.qos} over the broker's maximum")
            return
        if will.retain and not config.retain_available:
            _refuse(conn, ConnackReturnCode.NOT_AUTHORIZED,
                    ReasonCode.RETAIN_NOT_SUPPORTED, "retained will, and retain is off")
            return
        if will.topic.startswith("$") and not own_sys_topic(will.topic, client_id):
            _refuse(conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
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
    if broker.hooks.active:
        if not broker.hooks.authenticate(info, packet.username, packet.password):
            _refuse(conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                    "not authorized (authentication hook)")
            return
        if will is not None and not broker.hooks.allowed(info, will.topic, Access.WRITE):
            _refuse(conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
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
    session, session_present = broker.sessions.open(
        conn, client_id=client_id, protocol_version=level, expiry=expiry,
        clean_start=packet.clean_start, will=will)
    conn.client_info = session.client_info = info
    conn.client_id = client_id
    conn.state = CONNECTED
    conn.keepalive = keepalive
    conn.deadline = now + 1.5 * keepalive if keepalive else 0.0
    conn.reader.max_packet_size = config.max_packet_size

    # MQTT 3.1's CONNACK has no session present flag: its first byte is reserved.
    conn.send(Connack(session_present=session_present and level > 3, properties=properties))
    if broker.hooks.active:
        broker.hooks.notify("on_connect", info)
    log.info("%s %s connected from %s (MQTT %s, %s, keep alive %ds)",
             "bridge" if conn.bridge else "client", client_id, conn.peer, VERSION_NAMES[level],
             "resumed session" if session_present else "new session", keepalive)
    if session_present:
        resend_inflight(broker, session, conn, now)
        pump(broker, session, now)


def handle_pingreq(context: Context, packet: Pingreq) -> None:
    context.conn.send(Pingresp())


def handle_disconnect(context: Context, packet: Disconnect) -> None:
    broker, conn, session = context.broker, context.conn, context.session
    expiry = packet.properties.session_expiry_interval
    if expiry is not None:
        if session.expiry_interval == 0 and expiry > 0:
            broker.drop(conn, "DISCONNECT set a session expiry after connecting with none",
                        ReasonCode.PROTOCOL_ERROR)
            return
        broker.sessions.set_expiry(session, expiry)
    conn.publish_will = packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
    broker.drop(conn, "client disconnected" + (" with will" if conn.publish_will else ""))


def handle_auth(context: Context, packet: Auth) -> None:
    context.broker.drop(context.conn, "AUTH without an authentication method",
                        ReasonCode.PROTOCOL_ERROR)
