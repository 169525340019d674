"""SUBSCRIBE and UNSUBSCRIBE (spec 3.8, 3.10), with retained messages on subscribe."""

from __future__ import annotations

from mqlite.protocol import (
    InvalidTopic,
    ReasonCode,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    parse_shared_subscription,
    validate_topic_filter,
)

from ...hooks import Access
from ..delivery import deliver
from ..services import Context
from ..session import SubscriptionOptions


def mounted_filter(mount_point: str, topic_filter: str) -> str:
    """A filter from a client on a listener with a mount point, as the broker sees it: the
    mount point before it (for a shared subscription, before the filter within it)."""
    shared = parse_shared_subscription(topic_filter)
    if shared is not None:
        return f"$share/{shared.group}/{mount_point}{shared.topic_filter}"
    return mount_point + topic_filter


def handle_subscribe(context: Context, packet: Subscribe) -> None:
    broker, conn, session, now = context.broker, context.conn, context.session, context.now
    broker.stats.control_packets_received += 1
    config = broker.config
    v5 = conn.version == 5
    identifiers = packet.properties.subscription_identifier
    identifier = identifiers[0] if identifiers else None
    codes: list[int] = []
    retained_for: list[tuple[str, SubscriptionOptions]] = []
    # A bridge speaking 3.1.x cannot ask for these, and wants them as mosquitto gives them:
    # none of its own messages echoed back to it, and the retain flag as published.
    bridged = conn.bridge and not v5
    hooks = broker.hooks
    info = conn.who()
    for request in packet.subscriptions:
        topic_filter = request.topic_filter
        failure = None
        try:
            validate_topic_filter(topic_filter, config.max_topic_levels)
        except InvalidTopic as exc:
            failure = (ReasonCode.TOPIC_FILTER_INVALID, str(exc))
        if conn.mount_point and failure is None:
            topic_filter = mounted_filter(conn.mount_point, topic_filter)
        is_new = topic_filter not in session.subscriptions
        if failure is None and is_new and len(session.subscriptions) >= config.max_subscriptions:
            failure = (ReasonCode.QUOTA_EXCEEDED, f"over {config.max_subscriptions} subscriptions")
        shared = parse_shared_subscription(topic_filter) if failure is None else None
        # Access is to what the subscription matches: a shared one's filter within it, as
        # mosquitto checks it ("$share/<group>/" is no topic anyone's rules name).
        if failure is None and hooks.checks_access and not hooks.allowed(
                info, shared.topic_filter if shared else topic_filter, Access.READ):
            failure = (ReasonCode.NOT_AUTHORIZED, "not authorized (access hook)")
            broker.denials.denied("SUBSCRIBE", info, topic_filter, Access.READ)
        if failure is not None:
            if conn.version == 3:  # MQTT 3.1 has no failure return code
                broker.drop(conn, f"cannot subscribe to {topic_filter!r}: {failure[1]}")
                return
            codes.append(failure[0] if v5 else 0x80)
            continue
        options = SubscriptionOptions(
            qos=min(request.qos, config.max_qos), no_local=request.no_local or bridged,
            retain_as_published=request.retain_as_published or bridged,
            retain_handling=request.retain_handling, identifier=identifier)
        # Re-subscribing replaces the subscription [MQTT-3.8.4-3].
        session.subscribe(topic_filter, options)
        broker.index.subscribe(session.client_id, topic_filter, options)
        broker.journal.subscription(session, topic_filter, options)
        codes.append(options.qos)
        if hooks.active:
            hooks.notify("on_subscribe", info, topic_filter, options.qos)
        if shared is None and (options.retain_handling == 0
                           or (options.retain_handling == 1 and is_new)):
            retained_for.append((topic_filter, options))
    conn.send(Suback(packet_id=packet.packet_id, reason_codes=codes))
    broker.cluster.hold(conn, None, None)  # cluster mode: once the route is stored in Redis
    for topic_filter, options in retained_for:  # [MQTT-3.3.1-6], with RETAIN set [MQTT-3.3.1-8]
        ids = (options.identifier,) if options.identifier else ()
        for message in broker.retained.matching(topic_filter, now):
            cap = 2 if config.upgrade_outgoing_qos else message.qos
            deliver(broker, session, message, qos=min(options.qos, cap), retain=True,
                    subscription_ids=ids, now=now, cache=None)


def handle_unsubscribe(context: Context, packet: Unsubscribe) -> None:
    broker, conn, session = context.broker, context.conn, context.session
    broker.stats.control_packets_received += 1
    codes = []
    for given in packet.topic_filters:  # exact, character by character [MQTT-3.10.4-1]
        topic_filter = mounted_filter(conn.mount_point, given) if conn.mount_point else given
        if session.subscriptions.pop(topic_filter, None) is not None:
            broker.index.unsubscribe(session.client_id, topic_filter)
            broker.journal.unsubscribed(session, topic_filter)
            codes.append(ReasonCode.SUCCESS)
            if broker.hooks.active:
                broker.hooks.notify("on_unsubscribe", conn.who(), topic_filter)
        else:
            codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
    conn.send(Unsuback(packet_id=packet.packet_id,
                       reason_codes=[int(c) for c in codes] if conn.version == 5 else []))
    broker.cluster.hold(conn, None, None)
