"""A connection's life: CONNECT (validation, every CONNACK code, client ids; then the
registry's take-over, clean start or resumption), PINGREQ, DISCONNECT and AUTH."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import NamedTuple

from mqlite.protocol import (
    Connack,
    ConnackReturnCode,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    ReasonCode,
    Will,
    encode_within,
)

from ...config.broker_config import NEVER_EXPIRES, BrokerConfig
from ...hooks import Access, ClientInfo
from ...security.failure_delays import host_of
from ..connection import CONNECTED, VERSION_NAMES, Connection
from ..delivery import pump, resend_inflight
from ..services import BrokerServices, Context
from ..sys_topics import own_sys_topic
from . import auth

log = logging.getLogger("mqlite.broker")


def _refuse(broker: BrokerServices, conn: Connection, v3_code: int, v5_code: int,
            why: str) -> None:
    """CONNACK with a refusal, then close [MQTT-3.2.2-5] [MQTT-3.2.2-7]; nothing the client
    sent after this CONNECT is processed [MQTT-3.1.4-5]."""
    if not conn.open:  # gone while its refusal was held
        return
    conn.send(Connack(reason_code=v5_code if conn.version == 5 else v3_code))
    broker.stats.refusal(refusal_name(v3_code, v5_code))
    conn.close(why)
    log.info("connection from %s refused: %s", conn.peer, why,
             extra={"event": "refused", "peer": conn.peer, "listener": conn.listener})


def refusal_name(v3_code: int, v5_code: int) -> str:
    """A refusal's label for mqlite_connections_refused_total: its reason code's name."""
    if v5_code:
        return ReasonCode(v5_code).name.lower()
    return ("client_identifier_not_valid" if v3_code == ConnackReturnCode.IDENTIFIER_REJECTED
            else ConnackReturnCode(v3_code).name.lower())


def handle_connect(broker: BrokerServices, conn: Connection, packet: Connect,
                   now: float) -> None:
    config = broker.config
    broker.stats.control_packets_received += 1
    level = packet.protocol_version
    conn.version = level
    conn.bridge = packet.bridge
    props = packet.properties
    if level == 5 and props.maximum_packet_size is not None:
        # Before any CONNACK: it too must fit [MQTT-3.1.2-24].
        conn.own_negotiated().max_packet_size = props.maximum_packet_size
    identity = _client_id(broker, packet)
    if isinstance(identity, _Refusal):
        _refuse(broker, conn, *identity)
        return
    client_id, assigned = identity
    keepalives = _keepalive(config, packet)
    if isinstance(keepalives, _Refusal):
        _refuse(broker, conn, *keepalives)
        return
    keepalive, server_keepalive = keepalives
    will = packet.will
    if will is not None and conn.mount_point:
        will = replace(will, topic=conn.mount_point + will.topic)
    refusal = _will_refusal(broker.config, will, client_id) if will is not None else None
    if refusal is not None:
        _refuse(broker, conn, *refusal)
        return
    if level == 5 and (props.receive_maximum or props.topic_alias_maximum):
        # (Request Problem Information needs nothing: the broker sends no reason strings.)
        negotiated = conn.own_negotiated()
        negotiated.receive_maximum = props.receive_maximum or 65_535
        negotiated.topic_alias_maximum = props.topic_alias_maximum or 0
    expiry = _session_expiry(config, packet)

    username = packet.username
    tls = conn.tls_identity
    if tls is not None and tls.username is not None:  # the listener takes it from there
        if not tls.username:
            _refuse(broker, conn, ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                    "no client certificate to take the username from")
            return
        username = tls.username
    info = ClientInfo(client_id=client_id, peer=conn.peer, listener=conn.listener,
                      protocol_version=level, username=username,
                      peer_certificate=tls.certificate if tls is not None else None)
    admission = _Admission(packet, info, assigned, keepalive, server_keepalive, will, expiry)
    method = props.authentication_method
    if method is not None:  # an offered one (else refused above)
        auth.start(broker, conn, method, props.authentication_data,
                          partial(_exchange_ended, broker, conn, admission, method), now)
        return
    if not broker.hooks.active:
        _admit(broker, conn, admission, now)
        return
    allowed = broker.authenticate(conn, info, packet.password,
                                  partial(_authenticated, broker, conn, admission))
    if allowed is not None:
        _authenticated(broker, conn, admission, allowed, now)


class _Admission(NamedTuple):
    """A CONNECT that passed every check but the hooks', and what was decided for it."""

    packet: Connect
    info: ClientInfo
    assigned: bool  # the broker chose the client id
    keepalive: int
    server_keepalive: int | None
    will: Will | None
    expiry: int
    auth_data: bytes | None = None  # enhanced authentication's last word, for the CONNACK


def _exchange_ended(broker: BrokerServices, conn: Connection, admission: _Admission,
                    method: str, username: str | None, data: bytes, why: str,
                    now: float) -> None:
    """CONNECT's enhanced authentication ended: the client proved who it is (it is not asked
    of the authentication hooks then; access checks apply as to anyone), or failed."""
    given = admission.packet.username
    if username is not None and given is not None and given != username:
        username, why = None, f"CONNECT's username {given!r} is not the one proved"
    if username is None:
        _refuse_failed_authentication(broker, conn, _Refusal(
            ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
            f"not authorized: client {admission.info.client_id!r}: {why}"), now)
        return
    info = replace(admission.info, username=username, auth_method=method)
    _authenticated(broker, conn, admission._replace(info=info, auth_data=data), True, now)


def _authenticated(broker: BrokerServices, conn: Connection, admission: _Admission,
                   allowed: bool, now: float) -> None:
    """The authentication hooks answered (at once, or later from a worker thread)."""
    refusal = _hook_refusal(broker, admission, allowed)
    if refusal is not None:
        _refuse_failed_authentication(broker, conn, refusal, now)
        return
    broker.auth_failures.succeeded(host_of(conn.peer))
    _admit(broker, conn, admission, now)


def _refuse_failed_authentication(broker: BrokerServices, conn: Connection,
                                  refusal: _Refusal, now: float) -> None:
    """Refused, at once the first time; held longer for each failure from the address."""
    delay = broker.auth_failures.failed(host_of(conn.peer), now)
    if delay:
        conn.held = True  # nothing more is read from it until the refusal goes out
        broker.call_later(delay, _refuse, broker, conn, *refusal)  # an attacker's time
    else:
        _refuse(broker, conn, *refusal)


def _admit(broker: BrokerServices, conn: Connection, admission: _Admission, now: float) -> None:
    """Cluster mode: the client id is claimed cluster-wide first (see cluster/claims.py)."""
    if not broker.clustered:
        _open_session(broker, conn, admission, now)
    else:
        broker.cluster.claim(conn, admission.info.client_id,
                             partial(_claimed, broker, conn, admission))


def _claimed(broker: BrokerServices, conn: Connection, admission: _Admission,
             claimed: bool, now: float) -> None:
    """Refused (CONNACK 0x88, return code 3) when Redis is away: no claim can be made."""
    if claimed:
        _open_session(broker, conn, admission, now)
        broker.cluster.hold(conn, None, None)  # the CONNACK waits for the session's routes
    else:
        _refuse(broker, conn, ConnackReturnCode.SERVER_UNAVAILABLE,
                ReasonCode.SERVER_UNAVAILABLE, "the cluster's Redis is unavailable")


def _open_session(broker: BrokerServices, conn: Connection, admission: _Admission,
                  now: float) -> None:
    """CONNACK: the session is taken over, started afresh or resumed."""
    config = broker.config
    packet, info = admission.packet, admission.info
    level, client_id = info.protocol_version, info.client_id
    properties = _connack_properties(config, level, client_id if admission.assigned else None,
                                     admission.server_keepalive)
    if info.auth_method is not None:
        properties = replace(properties, authentication_method=info.auth_method,
                             authentication_data=admission.auth_data)
    # Whether the CONNACK fits (session present is a flag: it changes no size) is known now,
    # before any session is taken over or created.
    limit = conn.negotiated.max_packet_size
    if limit is not None and encode_within(Connack(properties=properties), 5, limit) is None:
        conn.close(f"CONNACK does not fit the client's Maximum Packet Size {limit}")
        log.info("connection from %s refused: %s", conn.peer, conn.close_reason)
        return
    session, session_present = broker.sessions.open(
        conn, client_id=client_id, protocol_version=level, expiry=admission.expiry,
        clean_start=packet.clean_start, will=admission.will)
    says_more = (info.username is not None or info.peer_certificate is not None
                 or info.auth_method is not None)
    conn.client_info = session.client_info = info if says_more else None
    conn.client_id = client_id
    conn.state = CONNECTED
    keepalive = admission.keepalive
    conn.keepalive = keepalive
    conn.deadline = now + 1.5 * keepalive if keepalive else 0.0
    conn.reader.max_packet_size = config.max_packet_size

    # MQTT 3.1's CONNACK has no session present flag: its first byte is reserved.
    conn.send(Connack(session_present=session_present and level > 3, properties=properties))
    if broker.hooks.active:
        broker.hooks.notify("on_connect", info)
    log.info("%s %s connected from %s on %s, user %s (MQTT %s, %s, keep alive %ds)",
             "bridge" if conn.bridge else "client", client_id, conn.peer, conn.listener,
             info.username if info.username is not None else "(none)", VERSION_NAMES[level],
             "resumed session" if session_present else "new session", keepalive,
             extra={"event": "connect", "client_id": client_id, "peer": conn.peer,
                    "listener": conn.listener})
    if session_present:
        resend_inflight(broker, session, conn, now)
        pump(broker, session, now)


def attach_internal(broker: BrokerServices, conn: Connection, client_id: str,
                    now: float) -> None:
    """Attach an in-process connection (a bridge's local side, see local_link.py) to its
    persistent MQTT 5 session: no CONNECT, no authentication, no CONNACK. What the session
    had in flight is sent again, then its queue."""
    conn.version = 5
    session, present = broker.sessions.open(conn, client_id=client_id, protocol_version=5,
                                            expiry=NEVER_EXPIRES, clean_start=False,
                                            will=None)
    conn.client_id = client_id
    conn.state = CONNECTED
    log.info("bridge session %s attached (%s)", client_id,
             "resumed session" if present else "new session",
             extra={"event": "connect", "client_id": client_id, "peer": conn.peer,
                    "listener": conn.listener})
    if present:
        resend_inflight(broker, session, conn, now)
        pump(broker, session, now)


class _Refusal(NamedTuple):
    v3_code: int
    v5_code: int
    why: str


def _client_id(broker: BrokerServices, packet: Connect) -> tuple[str, bool] | _Refusal:
    """The client id, and whether the broker assigned it; or why the CONNECT is refused."""
    client_id = packet.client_id
    level = packet.protocol_version
    if level == 3 and not 1 <= len(client_id) <= 23:  # MQTT 3.1 section 3.1
        return _Refusal(ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                        f"MQTT 3.1 client id of {len(client_id)} characters (1 to 23 allowed)")
    method = packet.properties.authentication_method
    if method is not None and not auth.offered(broker, method):
        return _Refusal(0, ReasonCode.BAD_AUTHENTICATION_METHOD,
                        f"unsupported authentication method {method!r}")
    if client_id in broker.sessions.internal:
        return _Refusal(ConnackReturnCode.IDENTIFIER_REJECTED,
                        ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                        f"client id {client_id!r} is a bridge's local session")
    if client_id:
        return client_id, False
    if not broker.config.allow_zero_length_clientid:
        return _Refusal(ConnackReturnCode.IDENTIFIER_REJECTED,
                        ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                        "empty client id, and allow_zero_length_clientid is off")
    if level == 4 and not packet.clean_start:  # [MQTT-3.1.3-8]
        return _Refusal(ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                        "empty client id with clean session 0")
    return broker.sessions.new_client_id(), True  # [MQTT-3.1.3-6]


def _keepalive(config: BrokerConfig, packet: Connect) -> tuple[int, int | None] | _Refusal:
    """The keep alive to hold the client to, and the Server Keep Alive to tell it (MQTT 5,
    when over the broker's maximum); MQTT 3.1.x cannot be told, so it is refused."""
    keepalive = packet.keep_alive
    limit = config.max_keepalive
    if limit is None or 0 < keepalive <= limit:
        return keepalive, None
    if packet.protocol_version < 5:
        return _Refusal(ConnackReturnCode.IDENTIFIER_REJECTED, 0,
                        f"keep alive {keepalive} over the broker's maximum of {limit}")
    return limit, limit


def _session_expiry(config: BrokerConfig, packet: Connect) -> int:
    """Seconds the session outlives the connection: MQTT 5 says; MQTT 3.1.x clean session 0
    keeps it until ``session_expiry`` (if set), clean session 1 not at all."""
    if packet.protocol_version == 5:
        return packet.properties.session_expiry_interval or 0
    return 0 if packet.clean_start else (config.session_expiry or NEVER_EXPIRES)


def _will_refusal(config: BrokerConfig, will: Will, client_id: str) -> _Refusal | None:
    if will.qos > config.max_qos:
        return _Refusal(ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.QOS_NOT_SUPPORTED,
                        f"will QoS {will.qos} over the broker's maximum")
    if will.retain and not config.retain_available:
        return _Refusal(ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.RETAIN_NOT_SUPPORTED,
                        "retained will, and retain is off")
    if will.topic.startswith("$") and not own_sys_topic(will.topic, client_id):
        return _Refusal(ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                        f"will topic {will.topic!r} is reserved")
    return None


def _hook_refusal(broker: BrokerServices, admission: _Admission,
                  authenticated: bool) -> _Refusal | None:
    """Authentication, then the will topic's access check: the first refusal wins."""
    info = admission.info
    if not authenticated:
        return _Refusal(ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                        f"not authorized: client {info.client_id!r}, username "
                        f"{info.username!r}")
    will = admission.will
    if will is not None and not broker.hooks.allowed(info, will.topic, Access.WRITE):
        return _Refusal(ConnackReturnCode.NOT_AUTHORIZED, ReasonCode.NOT_AUTHORIZED,
                        f"will topic {will.topic!r} not allowed (access hook)")
    return None


def _connack_properties(config: BrokerConfig, level: int, assigned_client_id: str | None,
                        server_keepalive: int | None) -> Properties:
    """MQTT 5: what the client must know of the broker's limits (none before MQTT 5)."""
    if level < 5:
        return Properties()
    return Properties(
        assigned_client_identifier=assigned_client_id,
        server_keep_alive=server_keepalive,
        receive_maximum=config.receive_maximum if config.receive_maximum < 65_535 else None,
        maximum_packet_size=config.max_packet_size,
        topic_alias_maximum=config.topic_alias_maximum or None,
        maximum_qos=config.max_qos if config.max_qos < 2 else None,
        retain_available=None if config.retain_available else 0,
    )


def handle_pingreq(context: Context, packet: Pingreq) -> None:
    context.broker.stats.control_packets_received += 1
    context.conn.send(Pingresp())


def handle_disconnect(context: Context, packet: Disconnect) -> None:
    broker, conn, session = context.broker, context.conn, context.session
    broker.stats.control_packets_received += 1
    expiry = packet.properties.session_expiry_interval
    if expiry is not None:
        if session.expiry_interval == 0 and expiry > 0:
            broker.drop(conn, "DISCONNECT set a session expiry after connecting with none",
                        ReasonCode.PROTOCOL_ERROR)
            return
        broker.sessions.set_expiry(session, expiry)
    conn.publish_will = packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
    broker.drop(conn, "client disconnected" + (" with will" if conn.publish_will else ""))


