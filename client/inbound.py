"""What the client does with each packet the broker sends. State changes happen at once, under
the client's lock; user callbacks (and the acknowledgements that must follow them) are appended
to ``calls`` and run after the lock is released."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mqlite.protocol import (
    EMPTY_PROPERTIES,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingresp,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    ReasonCode,
    Suback,
    Subscribe,
    Unsuback,
    Will,
)
from mqlite.protocol import Properties as WireProperties

from .constants import (
    MQTT_CLEAN_START_FIRST_ONLY,
    MQTT_ERR_SUCCESS,
    MQTTErrorCode,
    MQTTv5,
)
from .message import MQTTMessage, MQTTMessageInfo
from .mqtt5_types import (
    V3_CONNACK_REASONS,
    ConnectFlags,
    DisconnectFlags,
    PacketTypes,
    from_wire,
    reason,
    to_wire,
)

if TYPE_CHECKING:
    from .client import Client

Calls = list[Callable[[], None]]


def connect_packet(client: Client) -> Connect:
    will = None
    if client._will is not None:
        topic, payload, qos, retain, props = client._will
        will = Will(topic=topic, payload=payload, qos=qos, retain=retain, properties=props)
    if client._protocol == MQTTv5:
        clean = client._clean_start
        clean_start = (not client._connected_once) if clean == MQTT_CLEAN_START_FIRST_ONLY \
            else bool(clean)
    else:
        clean_start = client._clean_session
    password = client.password.encode() if isinstance(client.password, str) else client.password
    return Connect(
        client_id=client._client_id, protocol_version=int(client._protocol),
        clean_start=clean_start, keep_alive=client.keepalive, will=will,
        username=client.username, password=password,
        properties=to_wire(client._connect_properties) if client._protocol == MQTTv5
        else EMPTY_PROPERTIES,
    )


def handle_packet(client: Client, packet: Packet, calls: Calls) -> None:
    if isinstance(packet, Publish):
        on_publish_packet(client, packet, calls)
    elif isinstance(packet, Puback):
        flow_done(client, packet.packet_id, 1, packet.reason_code, packet.properties, calls)
    elif isinstance(packet, Pubrec):
        on_pubrec(client, packet, calls)
    elif isinstance(packet, Pubrel):
        on_pubrel(client, packet, calls)
    elif isinstance(packet, Pubcomp):
        flow_done(client, packet.packet_id, 2, packet.reason_code, packet.properties, calls)
    elif isinstance(packet, Pingresp):
        client._conn.pong()
    elif isinstance(packet, Connack):
        on_connack(client, packet, calls)
    elif isinstance(packet, Suback):
        on_suback(client, packet, calls)
    elif isinstance(packet, Unsuback):
        client._ids.release(packet.packet_id)
        codes = [reason(PacketTypes.UNSUBACK, c) for c in packet.reason_codes]
        props = from_wire(PacketTypes.UNSUBACK, packet.properties)
        calls.append(lambda: client._call(client.on_unsubscribe, packet.packet_id, codes, props))
    elif isinstance(packet, Disconnect):
        client._log(0x02, "broker sent DISCONNECT 0x%02X", packet.reason_code)
        client._close(MQTTErrorCode.MQTT_ERR_CONN_LOST, calls, packet.reason_code, True,
                    packet.properties)
    else:
        raise ProtocolError(f"unexpected {type(packet).__name__} from the broker")


def on_connack(client: Client, packet: Connack, calls: Calls) -> None:
    if client._conn.connected:
        raise ProtocolError("a second CONNACK")
    v5 = client._protocol == MQTTv5
    code = packet.reason_code if v5 else V3_CONNACK_REASONS.get(packet.reason_code, 0x80)
    rc = reason(PacketTypes.CONNACK, code)
    flags = ConnectFlags(packet.session_present)
    props = from_wire(PacketTypes.CONNACK, packet.properties)
    if code >= 0x80:
        calls.append(lambda: client._call(client.on_connect, flags, rc, props))
        client._close(MQTTErrorCode.MQTT_ERR_CONN_REFUSED, calls, code)
        return
    wire = packet.properties
    conn = client._conn
    conn.connected = True
    conn.ready = False
    conn.server_keep_alive = wire.server_keep_alive
    conn.server_receive_maximum = wire.receive_maximum or 0
    conn.server_maximum_packet_size = wire.maximum_packet_size or 0
    if wire.assigned_client_identifier:
        client._client_id = wire.assigned_client_identifier
    client._connected_once = True
    client._outgoing.rewind(packet.session_present)
    if packet.session_present:
        client._subscriptions.mark_all_sent(client._connection_number)
    client._log(0x10, "connected (session present: %s)", packet.session_present)
    calls.append(lambda: client._call(client.on_connect, flags, rc, props))
    calls.append(lambda: after_connect(client))


def after_connect(client: Client) -> None:
    """After on_connect: requests made offline, subscriptions the broker lost, then the
    messages waiting to go out (in-flight ones first, in their order)."""
    with client._lock:
        if not client._conn.connected:
            return
        number = client._connection_number
        for request in client._offline_requests:
            if isinstance(request, Subscribe):
                for subscription in request.subscriptions:
                    record = client._subscriptions.records.get(subscription.topic_filter)
                    if record is not None:
                        record.sent_on = number
            client._queue_packet(request)
        client._offline_requests.clear()
        for properties, subscriptions in client._subscriptions.stale(number):
            mid = client._ids.allocate()
            client._subscriptions.awaiting_ack[mid] = [s.topic_filter for s in subscriptions]
            client._queue_packet(Subscribe(packet_id=mid, subscriptions=subscriptions,
                                         properties=properties))
        client._conn.ready = True
        client._pump()
        if client._outbox is not None:
            client._outbox.commit()
    client._update_write_registration()


def on_publish_packet(client: Client, packet: Publish, calls: Calls) -> None:
    if not packet.topic:
        # We allow the broker no topic aliases (Topic Alias Maximum 0).
        raise ProtocolError("PUBLISH without a topic name", ReasonCode.TOPIC_ALIAS_INVALID)
    message = MQTTMessage(packet.packet_id or 0, packet.topic)
    message.payload = packet.payload
    message.qos = packet.qos
    message.retain = packet.retain
    message.dup = packet.dup
    message.timestamp = time.monotonic()
    if client._protocol == MQTTv5:
        message.properties = from_wire(PacketTypes.PUBLISH, packet.properties)
    if packet.qos == 0:
        calls.append(lambda: deliver(client, message))
    elif packet.qos == 1:
        calls.append(lambda: deliver_then_ack(client, message, Puback))
    else:
        mid = message.mid
        if mid not in client._in_qos2:
            client._in_qos2[mid] = message
        client._queue_packet(Pubrec(packet_id=mid))


def on_pubrel(client: Client, packet: Pubrel, calls: Calls) -> None:
    message = client._in_qos2.pop(packet.packet_id, None)
    if message is None:
        client._queue_packet(Pubcomp(packet_id=packet.packet_id))
    else:
        calls.append(lambda: deliver_then_ack(client, message, Pubcomp))


def deliver_then_ack(client: Client, message: MQTTMessage, ack: type[Puback | Pubcomp]
                      ) -> None:
    """Acknowledge only once the callback returned, so a crash before that means the
    broker sends the message again. An exception not suppressed also withholds the ack."""
    try:
        deliver(client, message)
    except Exception as exc:
        if not client._suppressing():
            raise
        client._log_callback_error(exc)
    if client._manual_ack:
        return
    with client._lock:
        if client._sock is None:
            return
        client._queue_packet(ack(packet_id=message.mid))
    client._update_write_registration()


def deliver(client: Client, message: MQTTMessage) -> None:
    matched = client._topic_callbacks.match(message.topic)
    if matched:
        for entries in matched:
            for callback in list(entries.values()):
                callback(client, client._userdata, message)
    elif client.on_message is not None:
        client.on_message(client, client._userdata, message)


def on_pubrec(client: Client, packet: Pubrec, calls: Calls) -> None:
    mid = packet.packet_id
    if packet.reason_code >= 0x80:
        pending = client._outgoing.fail(mid)
        if pending is not None:
            finish_flow(client, pending.info, PacketTypes.PUBREC, packet.reason_code,
                              packet.properties, calls)
        return
    client._outgoing.pubrec(mid)
    client._queue_packet(Pubrel(packet_id=mid))


def flow_done(client: Client, mid: int, qos: int, code: int, props: WireProperties,
               calls: Calls) -> None:
    pending = client._outgoing.complete(mid, qos)
    if pending is None:
        client._log(0x10, "ack for unknown message %d ignored", mid)
        return
    packet_type = PacketTypes.PUBACK if qos == 1 else PacketTypes.PUBCOMP
    finish_flow(client, pending.info, packet_type, code, props, calls)


def finish_flow(client: Client, info: MQTTMessageInfo, packet_type: int, code: int,
                 props: WireProperties, calls: Calls) -> None:
    calls.append(lambda: complete(client, info, code, props, packet_type))


def complete(client: Client, info: MQTTMessageInfo, code: int, props: WireProperties,
              packet_type: int = PacketTypes.PUBACK) -> None:
    info._finish(MQTT_ERR_SUCCESS, code)
    if client.on_publish is not None:
        client.on_publish(client, client._userdata, info.mid, reason(packet_type, code),
                        from_wire(packet_type, props))


def on_suback(client: Client, packet: Suback, calls: Calls) -> None:
    client._subscriptions.acknowledged(packet.packet_id, packet.reason_codes)
    client._ids.release(packet.packet_id)
    codes = [reason(PacketTypes.SUBACK, c) for c in packet.reason_codes]
    props = from_wire(PacketTypes.SUBACK, packet.properties)
    calls.append(lambda: client._call(client.on_subscribe, packet.packet_id, codes, props))


def disconnected(client: Client, rc: MQTTErrorCode, code: Any, from_server: bool,
                  properties: WireProperties) -> None:
    if client.on_disconnect is None:
        return
    if code is None:
        code = {MQTT_ERR_SUCCESS: 0x00, MQTTErrorCode.MQTT_ERR_KEEPALIVE: 0x8D,
                MQTTErrorCode.MQTT_ERR_PROTOCOL: 0x82}.get(rc, 0x80)
    client.on_disconnect(client, client._userdata, DisconnectFlags(from_server),
                       reason(PacketTypes.DISCONNECT, code),
                       from_wire(PacketTypes.DISCONNECT, properties))
