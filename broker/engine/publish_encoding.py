"""Outbound PUBLISH encoding: the bytes of one message for one connection, with MQTT 5 topic
aliases, and shared among the subscribers whose bytes are the same."""

from __future__ import annotations

from dataclasses import replace

from mqlite.protocol import EMPTY_PROPERTIES, Publish, encode_publish, encode_publish_fields

from ..message import Message
from . import packet_log
from .connection import Connection
from .services import BrokerServices
from .stats import TOO_LARGE

# What makes one subscriber's PUBLISH bytes differ from another's, for one message at QoS 0:
# the protocol version, the retain flag and the subscription identifiers. Only QoS 0 may share
# bytes: a QoS 1/2 PUBLISH carries the receiving session's own packet id.
WireVariant = tuple[int, bool, tuple[int, ...]]
# The bytes encoded so far for one message, by variant (one cache per routed message).
WireCache = dict[WireVariant, bytes]


def send_publish(broker: BrokerServices, conn: Connection, message: Message, qos: int,
                 retain: bool, packet_id: int | None, dup: bool,
                 subscription_ids: tuple[int, ...], now: float, cache: WireCache | None,
                 allow_alias: bool = True) -> bool:
    """Queue the PUBLISH on ``conn``; False if it exceeds the client's Maximum Packet Size.
    Called positionally on the hot path (keywords cost a pure-Python call more)."""
    version = conn.version
    use_alias = allow_alias and version == 5 and conn.negotiated.topic_alias_maximum > 0
    topic = message.topic
    mount_point = conn.mount_point
    if mount_point:  # the client sees topics without its listener's mount point
        topic = topic[len(mount_point):] if topic.startswith(mount_point) else topic
        cache = None  # bytes for other listeners' clients would differ
    key: WireVariant = (version, retain, subscription_ids)
    data = cache.get(key) if cache is not None and not use_alias else None
    if data is None:
        properties = EMPTY_PROPERTIES
        if version == 5:
            properties = message.properties_at(now)
            if subscription_ids:
                properties = replace(properties, subscription_identifier=subscription_ids)
        data = encode_publish_fields(topic, message.payload, qos, retain, dup, packet_id,
                                     properties, version)
        limit = conn.negotiated.max_packet_size
        if limit is not None and len(data) > limit:
            broker.count_drop(conn.client_id, f"message on {message.topic!r} exceeds the "
                                              f"client's maximum packet size {limit}",
                              message, TOO_LARGE)
            return False
        if use_alias:
            data = _with_alias(conn, Publish(topic=topic, payload=message.payload, qos=qos,
                                             retain=retain, dup=dup, packet_id=packet_id,
                                             properties=properties))
        elif cache is not None:
            cache[key] = data
    if packet_log.SWITCH.on:
        packet_log.packet_out(conn.client_id, conn.peer, f"PUBLISH id={packet_id} topic="
                              f"{message.topic!r} qos={qos}", len(data))
    conn.send_bytes(data)
    stats = broker.stats
    stats.messages_sent += 1
    if qos:  # QoS 0 is the rest of the total: nothing more for the hot path
        stats.sent_qos[qos] += 1
    return True


def _with_alias(conn: Connection, packet: Publish) -> bytes:
    """MQTT 5 topic alias towards the client: the first message on a topic carries the topic
    and a new alias, later ones only the alias, while aliases last."""
    negotiated = conn.negotiated  # its own: it asked for aliases
    aliases = negotiated.outbound_aliases
    alias = aliases.get(packet.topic)
    if alias is not None:
        packet.properties = replace(packet.properties, topic_alias=alias)
        packet.topic = ""
    elif len(aliases) < negotiated.topic_alias_maximum:
        alias = aliases[packet.topic] = len(aliases) + 1
        packet.properties = replace(packet.properties, topic_alias=alias)
    return encode_publish(packet, 5)
