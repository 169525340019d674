"""The client's protocol session, sans-IO (as h11's ``Connection``): it takes the bytes read
and the time, and gives back events and the bytes to write. It holds the packet ids, the
outgoing QoS flows (on the protocol's shared flow table), the subscriptions, the keepalive
clock and the inbound QoS 2 messages. No sockets, threads or locks: ``Client`` owns those,
holds its lock around every call, and turns the events into callbacks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mqlite.protocol import (
    EMPTY_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    MQTTError,
    Packet,
    PacketIdAllocator,
    PacketReader,
    Pingreq,
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
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    encode,
    encode_publish_fields,
)
from mqlite.protocol import Properties as WireProperties
from mqlite.protocol.qos_flow import Ack, Outcome

from .connection_state import ConnectionState
from .constants import (
    MQTT_CLEAN_START_FIRST_ONLY,
    MQTT_ERR_PAYLOAD_SIZE,
    MQTT_ERR_QUEUE_SIZE,
    MQTT_ERR_SUCCESS,
    MQTT_LOG_DEBUG,
    MQTT_LOG_ERR,
    MQTT_LOG_NOTICE,
    MQTTErrorCode,
    MQTTv5,
)
from .events import (
    Connected,
    ConnectionEnds,
    Event,
    MessageReceived,
    ProtocolViolated,
    PublishCompleted,
    Reauthenticated,
    Relayed,
    RequestAcknowledged,
)
from .message import MQTTMessage, MQTTMessageInfo
from .mqtt5_types import V3_CONNACK_REASONS, ConnectFlags, PacketTypes, from_wire, reason, to_wire
from .outbox import Outbox
from .outgoing import Outgoing, Pending
from .settings import ClientSettings
from .subscriptions import SubscriptionBook

Log = Callable[..., None]  # (level, format, *args)

# Which acknowledgement a packet is, for the flow table.
_ACKS = {Puback: Ack.PUBACK, Pubcomp: Ack.PUBCOMP}


class ClientSession:
    def __init__(self, settings: ClientSettings, client_id: str, protocol: int,
                 clean_session: bool, outbox: Outbox | None, log: Log) -> None:
        self.settings = settings
        self.client_id = client_id
        self.protocol = protocol
        self.clean_session = clean_session
        self.conn = ConnectionState()
        self.reader: PacketReader | None = None
        # Bytes to write, in order; the shell writes them and reports how many went.
        self.out = bytearray()
        # QoS 0 messages in ``out``: (stream offset where the message ends, its info).
        self.qos0_unsent: deque[tuple[int, MQTTMessageInfo]] = deque()
        self.queued_total = 0
        self.written_total = 0
        self.connection_number = 0
        self.connected_once = False
        self.in_qos2: dict[int, MQTTMessage] = {}
        self.subscriptions = SubscriptionBook()
        # SUBSCRIBE / UNSUBSCRIBE packets made while offline, sent after the next CONNACK.
        self.offline_requests: list[Subscribe | Unsubscribe] = []
        self.outbox = outbox
        # SUBSCRIBE, UNSUBSCRIBE and in-flight PUBLISH packets share the wire ids.
        self.ids = PacketIdAllocator()
        self.outgoing = Outgoing(outbox, self.ids)
        # The message ids the application sees, one counter for PUBLISH, SUBSCRIBE and
        # UNSUBSCRIBE as paho's (a program may track them in one dict). A SUBSCRIBE's or
        # UNSUBSCRIBE's is its packet id too; a PUBLISH gets its packet id when it is sent.
        self.last_mid = 0
        self._log = log
        if outbox is not None:
            for stored in outbox.load():
                self.outgoing.restore(Pending(
                    MQTTMessageInfo(stored.mid), stored.topic, stored.payload, stored.qos,
                    stored.retain, stored.properties, stored.state, stored.packet_id),
                    stored.seq)

    # -- the connection's life -------------------------------------------------------------

    def open(self, now: float) -> None:
        """A new connection: per-connection state starts afresh and CONNECT is queued."""
        self.reader = PacketReader("client", version=self.protocol)
        self.out.clear()
        self.qos0_unsent.clear()
        self.queued_total = self.written_total = 0
        # ``in_qos2`` stays: a resumed session's broker sends only PUBREL for the messages it
        # had our PUBREC for, and they are delivered then (see _on_connack otherwise).
        self.conn.opened(now)
        self.connection_number += 1
        self._queue_packet(self._connect_packet())

    def _connect_packet(self) -> Connect:
        settings = self.settings
        will = None
        if settings._will is not None:
            topic, payload, qos, retain, props = settings._will
            will = Will(topic=topic, payload=payload, qos=qos, retain=retain, properties=props)
        if self.protocol == MQTTv5:
            clean = settings._clean_start
            clean_start = (not self.connected_once) if clean == MQTT_CLEAN_START_FIRST_ONLY \
                else bool(clean)
        else:
            clean_start = self.clean_session
        password = settings.password
        if isinstance(password, str):
            password = password.encode()
        properties = EMPTY_PROPERTIES
        if self.protocol == MQTTv5:
            properties = to_wire(settings._connect_properties)
            authenticator = settings.authenticator
            if authenticator is not None:
                properties = replace(properties, authentication_method=authenticator.method,
                                     authentication_data=authenticator.start())
        return Connect(
            client_id=self.client_id, protocol_version=int(self.protocol),
            clean_start=clean_start, keep_alive=settings.keepalive, will=will,
            username=settings.username, password=password, properties=properties,
            bridge=settings.bridge_mode and self.protocol != MQTTv5,
        )

    def closed(self) -> list[MQTTMessageInfo]:
        """The connection is gone; the QoS 0 messages it had not written are returned."""
        self.reader = None
        self.out.clear()
        self.conn.closed()
        lost = [info for _, info in self.qos0_unsent]
        self.qos0_unsent.clear()
        if self.outbox is not None:
            self.outbox.commit()
        return lost

    def resume(self) -> None:
        """After on_connect: requests made offline, subscriptions the broker lost, then the
        messages waiting to go out (in-flight ones first, in their order)."""
        if not self.conn.connected:
            return
        number = self.connection_number
        for request in self.offline_requests:
            if isinstance(request, Subscribe):
                for subscription in request.subscriptions:
                    record = self.subscriptions.records.get(subscription.topic_filter)
                    if record is not None:
                        record.sent_on = number
            self._queue_packet(request)
        self.offline_requests.clear()
        for properties, subscriptions in self.subscriptions.stale(number):
            mid = self._request_mid()
            self.subscriptions.awaiting_ack[mid] = [s.topic_filter for s in subscriptions]
            self._queue_packet(Subscribe(packet_id=mid, subscriptions=subscriptions,
                                         properties=properties))
        self.conn.ready = True
        self.pump()
        if self.outbox is not None:
            self.outbox.commit()

    # -- what the application asks for ---------------------------------------------------

    def publish(self, topic: str, data: bytes, qos: int, retain: bool,
                properties: WireProperties) -> MQTTMessageInfo:
        outgoing = self.outgoing
        if qos == 0 and self.conn.ready and not outgoing.waiting:
            # The hot path: straight into the output buffer.
            info = MQTTMessageInfo(self._new_mid())
            self._queue_bytes(encode_publish_fields(topic, data, 0, retain, False, None,
                                                    properties, self.protocol))
            self.qos0_unsent.append((self.queued_total, info))
            return info
        limit = self.settings.max_queued_messages
        if limit and outgoing.stored() >= limit:
            info = MQTTMessageInfo(0)
            info.rc = MQTT_ERR_QUEUE_SIZE
            return info
        info = MQTTMessageInfo(self._new_mid())
        outgoing.add(Pending(info, topic, data, qos, retain, properties))
        if self.outbox is not None:
            self.outbox.commit()
        if self.conn.ready:
            self.pump()
        return info

    def subscribe(self, subscriptions: list[Subscription], properties: WireProperties) -> int:
        mid = self._request_mid()
        packet = Subscribe(packet_id=mid, subscriptions=subscriptions, properties=properties)
        self.subscriptions.awaiting_ack[mid] = [s.topic_filter for s in subscriptions]
        if self.conn.connected:
            self.subscriptions.add(subscriptions, properties, self.connection_number)
            self._queue_packet(packet)
        else:
            self.subscriptions.add(subscriptions, properties, -1)
            self.offline_requests.append(packet)
        return mid

    def unsubscribe(self, topic_filters: list[str], properties: WireProperties) -> int:
        mid = self._request_mid()
        packet = Unsubscribe(packet_id=mid, topic_filters=topic_filters, properties=properties)
        self.subscriptions.remove(topic_filters)
        if self.conn.connected:
            self._queue_packet(packet)
        else:
            self.offline_requests.append(packet)
        return mid

    def reauthenticate(self) -> None:
        """AUTH 0x19: prove who we are again, on the connection as it is."""
        authenticator = self.settings.authenticator
        if authenticator is None or self.protocol != MQTTv5:
            raise ValueError("reauthenticate() needs MQTT 5 and enhanced_auth()")
        self._queue_packet(Auth(reason_code=ReasonCode.RE_AUTHENTICATE, properties=WireProperties(
            authentication_method=authenticator.method,
            authentication_data=authenticator.start())))

    def disconnect(self, code: int, properties: WireProperties) -> None:
        self._queue_packet(Disconnect(reason_code=code, properties=properties))
        self.conn.disconnecting = True

    def acknowledge(self, packet_id: int, qos: int) -> None:
        """A received QoS 1 / 2 message was handled: PUBACK / PUBCOMP."""
        self._queue_packet(Puback(packet_id=packet_id) if qos == 1
                           else Pubcomp(packet_id=packet_id))

    def drop_out_messages(self) -> list[Pending]:
        dropped = self.outgoing.drop_all()
        if self.outbox is not None:
            self.outbox.commit()
        return dropped

    # -- bytes and time ------------------------------------------------------------------

    def receive_data(self, data: memoryview, now: float) -> list[Event]:
        """Handle every complete packet in ``data``; then send what the window allows."""
        events: list[Event] = []
        reader = self.reader
        assert reader is not None, "receive_data() before open()"
        self.conn.last_in = now
        try:
            for packet in reader.feed(data):
                self._handle(packet, events, now)
                if events and isinstance(events[-1], ConnectionEnds):
                    return events
        except MQTTError as exc:
            events.append(ProtocolViolated(exc))
            return events
        if self.conn.ready:
            self.pump()
        if self.outbox is not None:
            self.outbox.commit()
        return events

    def written(self, count: int) -> None:
        """``count`` bytes of ``out`` were written."""
        del self.out[:count]
        self.written_total += count

    def write_done(self, now: float) -> list[Event]:
        """After a round of writing: QoS 0 messages now written are complete, and a written
        DISCONNECT ends the connection."""
        self.conn.last_out = now
        events: list[Event] = []
        unsent = self.qos0_unsent
        written = self.written_total
        while unsent and unsent[0][0] <= written:
            events.append(PublishCompleted(unsent.popleft()[1], 0, EMPTY_PROPERTIES,
                                           PacketTypes.PUBACK))
        if not self.out and self.conn.disconnecting:
            events.append(ConnectionEnds(MQTT_ERR_SUCCESS))
        return events

    def tick(self, now: float) -> list[Event]:
        """Keepalive: PINGREQ when due; the end of a connection whose CONNACK or PINGRESP is
        late."""
        action = self.conn.check(now, self.effective_keepalive(), self.settings.connect_timeout)
        if action == "ping":
            self._queue_packet(Pingreq())
        elif action == "timeout":
            self._log(MQTT_LOG_DEBUG, "keepalive timeout")
            return [ConnectionEnds(MQTTErrorCode.MQTT_ERR_KEEPALIVE)]
        return []

    def next_deadline(self, now: float) -> float:
        return self.conn.next_deadline(now, self.effective_keepalive(),
                                       self.settings.connect_timeout)

    def effective_keepalive(self) -> int:
        server = self.conn.server_keep_alive
        return server if server is not None else self.settings.keepalive

    # -- packets from the broker ---------------------------------------------------------

    def _relayed(self, packet: Packet) -> bool:
        """In relay mode, whether ``packet`` goes to the relay as it is: every PUBLISH, and
        the acknowledgements of flows this session did not start."""
        if self.settings._relay is None:
            return False
        if isinstance(packet, Publish):
            return True
        if isinstance(packet, Puback | Pubrec | Pubcomp):
            return packet.packet_id not in self.outgoing.in_flight
        if isinstance(packet, Pubrel):
            return packet.packet_id not in self.in_qos2
        return False

    def relay(self, packet: Packet) -> None:
        """Relay mode: queue a PUBLISH or an acknowledgement the relay sends as it is."""
        self._queue_packet(packet)

    def _handle(self, packet: Packet, events: list[Event], now: float) -> None:
        if self.settings._debugging():
            self._log(MQTT_LOG_DEBUG, "Received %s", _describe(packet))
        if self._relayed(packet):
            events.append(Relayed(packet))
        elif isinstance(packet, Publish):
            self._on_publish(packet, events, now)
        elif isinstance(packet, Puback | Pubcomp):
            self._on_ack(packet.packet_id, _ACKS[type(packet)], packet.reason_code,
                         packet.properties, events)
        elif isinstance(packet, Pubrec):
            ack = Ack.PUBREC_REFUSED if packet.reason_code >= 0x80 else Ack.PUBREC
            self._on_ack(packet.packet_id, ack, packet.reason_code, packet.properties, events)
        elif isinstance(packet, Pubrel):
            message = self.in_qos2.pop(packet.packet_id, None)
            if message is None:
                self._queue_packet(Pubcomp(packet_id=packet.packet_id))
            else:
                events.append(MessageReceived(message, 2))
        elif isinstance(packet, Pingresp):
            self.conn.pong()
        elif isinstance(packet, Connack):
            self._on_connack(packet, events)
        elif isinstance(packet, Suback | Unsuback):
            subscribe = isinstance(packet, Suback)
            if subscribe:
                self.subscriptions.acknowledged(packet.packet_id, packet.reason_codes)
            self.ids.release(packet.packet_id)
            kind = PacketTypes.SUBACK if subscribe else PacketTypes.UNSUBACK
            events.append(RequestAcknowledged(
                subscribe, packet.packet_id, [reason(kind, c) for c in packet.reason_codes],
                from_wire(kind, packet.properties)))
        elif isinstance(packet, Auth):
            self._on_auth(packet, events)
        elif isinstance(packet, Disconnect):
            self._log(MQTT_LOG_NOTICE, "broker sent DISCONNECT 0x%02X", packet.reason_code)
            events.append(ConnectionEnds(MQTTErrorCode.MQTT_ERR_CONN_LOST, packet.reason_code,
                                         True, packet.properties))
        else:
            raise ProtocolError(f"unexpected {type(packet).__name__} from the broker")

    def _on_connack(self, packet: Connack, events: list[Event]) -> None:
        conn = self.conn
        if conn.connected:
            raise ProtocolError("a second CONNACK")
        v5 = self.protocol == MQTTv5
        code = packet.reason_code if v5 else V3_CONNACK_REASONS.get(packet.reason_code, 0x80)
        connected = Connected(ConnectFlags(packet.session_present),
                              reason(PacketTypes.CONNACK, code),
                              from_wire(PacketTypes.CONNACK, packet.properties), code < 0x80,
                              packet.reason_code)
        if not connected.accepted:
            events.append(connected)
            events.append(ConnectionEnds(MQTTErrorCode.MQTT_ERR_CONN_REFUSED, code))
            return
        wire = packet.properties
        if self.settings.authenticator is not None and v5:
            self._authenticator_finish(wire.authentication_data)
        events.append(connected)
        conn.connected = True
        conn.ready = False
        conn.server_keep_alive = wire.server_keep_alive
        conn.server_receive_maximum = wire.receive_maximum or 0
        conn.server_maximum_packet_size = wire.maximum_packet_size or 0
        if wire.assigned_client_identifier:
            self.client_id = wire.assigned_client_identifier
        self.connected_once = True
        self.outgoing.rewind(packet.session_present)
        if not packet.session_present:
            self._release_held_messages(events)
        if packet.session_present:
            self.subscriptions.mark_all_sent(self.connection_number)
        self._log(MQTT_LOG_DEBUG, "connected (session present: %s)", packet.session_present)

    def _release_held_messages(self, events: list[Event]) -> None:
        """The broker kept no session, so no PUBREL will come for the QoS 2 messages it handed
        over with our PUBREC: deliver them now rather than lose them (nothing to send back)."""
        for message in self.in_qos2.values():
            events.append(MessageReceived(message, 0))
        self.in_qos2.clear()

    def _on_auth(self, packet: Auth, events: list[Event]) -> None:
        """The broker's side of enhanced authentication: continue, or (re-)authenticated."""
        authenticator = self.settings.authenticator
        wire = packet.properties
        if authenticator is None or wire.authentication_method != authenticator.method:
            raise ProtocolError("AUTH from the broker for a method we did not ask for")
        if packet.reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
            try:
                data = authenticator.step(wire.authentication_data or b"")
            except Exception as exc:
                raise ProtocolError(f"{authenticator.method}: {exc}",
                                    ReasonCode.UNSPECIFIED_ERROR) from None
            self._queue_packet(Auth(reason_code=ReasonCode.CONTINUE_AUTHENTICATION,
                                    properties=WireProperties(
                                        authentication_method=authenticator.method,
                                        authentication_data=data)))
        elif packet.reason_code == ReasonCode.SUCCESS and self.conn.connected:
            self._authenticator_finish(wire.authentication_data)
            events.append(Reauthenticated(from_wire(PacketTypes.AUTH, wire)))
        else:
            raise ProtocolError(f"AUTH with reason code 0x{packet.reason_code:02X}")

    def _authenticator_finish(self, data: bytes | None) -> None:
        """The broker's proof of itself: a broker that cannot give it is left."""
        authenticator = self.settings.authenticator
        assert authenticator is not None
        try:
            authenticator.finish(data)
        except Exception as exc:
            raise ProtocolError(f"{authenticator.method}: {exc}",
                                ReasonCode.UNSPECIFIED_ERROR) from None

    def _on_publish(self, packet: Publish, events: list[Event], now: float) -> None:
        if not packet.topic:
            # We allow the broker no topic aliases (Topic Alias Maximum 0).
            raise ProtocolError("PUBLISH without a topic name", ReasonCode.TOPIC_ALIAS_INVALID)
        message = MQTTMessage(packet.packet_id or 0, packet.topic)
        message.payload = packet.payload
        message.qos = packet.qos
        message.retain = packet.retain
        message.dup = packet.dup
        message.timestamp = now
        if self.protocol == MQTTv5:
            message.properties = from_wire(PacketTypes.PUBLISH, packet.properties)
        if packet.qos < 2:
            events.append(MessageReceived(message, packet.qos))
            return
        # QoS 2: PUBREC now, delivered at PUBREL (once, however often the PUBLISH comes).
        if message.mid not in self.in_qos2:
            self.in_qos2[message.mid] = message
        self._queue_packet(Pubrec(packet_id=message.mid))

    def _on_ack(self, packet_id: int, ack: Ack, code: int, properties: WireProperties,
                events: list[Event]) -> None:
        """PUBACK, PUBREC or PUBCOMP, as the protocol's flow table says."""
        outcome, pending = self.outgoing.acknowledge(packet_id, ack)
        if outcome is Outcome.COMPLETE:
            assert pending is not None
            packet_type = {Ack.PUBACK: PacketTypes.PUBACK, Ack.PUBCOMP: PacketTypes.PUBCOMP
                           }.get(ack, PacketTypes.PUBREC)
            events.append(PublishCompleted(pending.info, code, properties, packet_type))
        elif outcome is Outcome.RELEASE:
            self._queue_packet(Pubrel(packet_id=packet_id))
        elif outcome is Outcome.VIOLATION:
            assert pending is not None
            awaited = pending.state.name.removeprefix("AWAIT_")
            raise ProtocolError(f"{ack.value} for packet id {packet_id}, a QoS {pending.qos} "
                                f"message awaiting {awaited}")
        elif ack in (Ack.PUBREC, Ack.PUBREC_REFUSED):  # a PUBREC for no flow
            code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if self.protocol == MQTTv5 else 0
            self._queue_packet(Pubrel(packet_id=packet_id, reason_code=code))
        else:
            self._log(MQTT_LOG_DEBUG, "%s for unknown message %d ignored", ack.value, packet_id)

    # -- output ----------------------------------------------------------------------------

    def pump(self) -> None:
        """Move waiting messages into the output buffer as the in-flight window allows."""
        outgoing = self.outgoing
        window = self.settings.max_inflight_messages or 65535
        if self.conn.server_receive_maximum:
            window = min(window, self.conn.server_receive_maximum)
        version = self.protocol
        max_size = self.conn.server_maximum_packet_size
        while True:
            pending = outgoing.next_to_send(window)
            if pending is None:
                return
            if pending.releasing:
                self._queue_packet(Pubrel(packet_id=pending.packet_id))
                continue
            data = encode_publish_fields(
                pending.topic, pending.payload, pending.qos, pending.retain,
                pending.sent_before and pending.qos > 0,
                pending.packet_id if pending.qos else None, pending.properties, version)
            if max_size and len(data) > max_size:
                self._log(MQTT_LOG_ERR, "message to %s exceeds the broker's maximum packet "
                          "size", pending.topic)
                outgoing.discard(pending)
                pending.info._finish(MQTT_ERR_PAYLOAD_SIZE)
                continue
            self._queue_bytes(data)
            if self.settings._debugging():
                self._log(MQTT_LOG_DEBUG, "Sending PUBLISH (d%d, q%d, r%d, m%d), '%s', ... "
                          "(%d bytes)", pending.sent_before and pending.qos > 0, pending.qos,
                          pending.retain, pending.packet_id, pending.topic,
                          len(pending.payload))
            if pending.qos:
                outgoing.mark_sent(pending)
            else:
                self.qos0_unsent.append((self.queued_total, pending.info))

    def _new_mid(self) -> int:
        self.last_mid = self.last_mid % 65535 + 1
        return self.last_mid

    def _request_mid(self) -> int:
        """The next message id that is free as a packet id (an in-flight PUBLISH may hold
        it), reserved as one: a SUBSCRIBE's or UNSUBSCRIBE's."""
        for _ in range(65535):
            mid = self._new_mid()
            if mid not in self.ids:
                self.ids.reserve(mid)
                return mid
        return self.ids.allocate()  # every id in flight: allocate() says so
    def _queue_packet(self, packet: Any) -> None:
        if self.settings._debugging():
            self._log(MQTT_LOG_DEBUG, "Sending %s", _describe(packet))
        self._queue_bytes(encode(packet, self.protocol))

    def _queue_bytes(self, data: bytes) -> None:
        self.out += data
        self.queued_total += len(data)


def _describe(packet: Packet) -> str:
    """A packet in a debug line, as paho and mosquitto's clients show it ("PUBLISH (d0, q1,
    r0, m3), 'a/b', ... (5 bytes)"); never a payload or a password."""
    name = type(packet).__name__.upper()
    if isinstance(packet, Publish):
        return (f"{name} (d{int(packet.dup)}, q{packet.qos}, r{int(packet.retain)}, "
                f"m{packet.packet_id or 0}), '{packet.topic}', ... ({len(packet.payload)} "
                f"bytes)")
    packet_id = getattr(packet, "packet_id", None)
    if isinstance(packet, Connack):
        return f"{name} ({int(packet.session_present)}, {packet.reason_code})"
    if packet_id is not None:
        return f"{name} (Mid: {packet_id})"
    return name
