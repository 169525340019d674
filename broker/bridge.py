"""A bridge: this broker's topics carried to and from another MQTT broker.

Two MQTT sessions and a relay between them, on the broker's thread. The local side is an
in-process persistent session (:mod:`~mqlite.broker.local_link`) subscribed to the ``out``
topics; the remote side is mqlite's own client, on paho's external-loop contract, its socket in
the broker's selector, subscribed to the ``in`` topics. Nothing is acknowledged on one side
before the other has it:

- out: a QoS 1 message stays in the local session (in the store) until the remote broker's
  PUBACK, and then is acknowledged locally; after a restart or ``kill -9`` the local session
  sends it again (QoS 1: at least once).
- in: the client acknowledges to the remote broker (``manual_ack``) only when the local broker
  has stored the message and acknowledged it to the local session.

Loops: the local subscriptions are No Local (the bridge's own messages from the remote side
never go back out); the remote ones No Local and Retain As Published in MQTT 5, or the bridge
bit (``try_private``) in MQTT 3.1.1, which mosquitto and mqlite honour the same way. Opening
the remote socket (name lookup, TCP, TLS) is blocking, so it runs on a short-lived thread and
the socket is handed to the loop.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from mqlite.client import CallbackAPIVersion, Client, MQTTMessage, MQTTv5, MQTTv311
from mqlite.client.mqtt5_types import (
    ConnectFlags,
    DisconnectFlags,
    PacketTypes,
    Properties,
    ReasonCode,
    SubscribeOptions,
    from_wire,
    to_wire,
)
from mqlite.protocol import (
    EMPTY_PROPERTIES,
    Packet,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Unsubscribe,
    topic_matches_filter,
)

from .bridge_config import BridgeConfig, BridgeTopic, split_address
from .bridge_stats import BridgeStats
from .config import NEVER_EXPIRES
from .core import BrokerCore
from .local_link import LocalLink
from .message import Message

log = logging.getLogger("mqlite.broker")


class BridgeDriver(Protocol):
    """What a bridge needs of the event loop (:class:`~mqlite.broker.loop.EventLoop`)."""

    def drive(self, sock: Any, client: Any) -> None: ...

    def drive_writes(self, sock: Any, client: Any, want: bool) -> None: ...

    def undrive(self, sock: Any) -> None: ...

    def call_soon(self, callback: Callable[[], None]) -> None: ...


class Bridge:
    def __init__(self, config: BridgeConfig, core: BrokerCore, driver: BridgeDriver) -> None:
        self.config = config
        self.stats = core.bridges[config.name] = BridgeStats(
            config.name, config.resolved_local_client_id)
        self._core = core
        self._driver = driver
        self._stopped = False
        self._attempt = 0  # failed connects in a row, for the backoff
        self._address_index = 0
        self._keepalive_armed = False
        # Remote packet id of an outgoing QoS 1 message -> the local packet id to acknowledge.
        self._outgoing: dict[int, int] = {}
        self.link = LocalLink(core, config.resolved_local_client_id, config.name,
                              config.window, self._from_local, driver.call_soon)
        self.client = self._make_client()

    # -- the remote side's client -----------------------------------------------------------

    def _make_client(self) -> Client:
        config = self.config
        v5 = config.protocol == 5
        client = Client(CallbackAPIVersion.VERSION2, client_id=config.resolved_client_id,
                        clean_session=None if v5 else config.clean_start,
                        protocol=MQTTv5 if v5 else MQTTv311, reconnect_on_failure=False,
                        manual_ack=True)
        if config.try_private and not v5:
            client.enable_bridge_mode()
        client.max_inflight_messages_set(config.window)
        tls = config.tls
        if tls is not None:
            # The remote's certificate is always verified; insecure skips only the check
            # that it names the host (mosquitto's bridge_insecure).
            context = ssl.create_default_context(cafile=tls.cafile, capath=tls.capath)
            if tls.certfile is not None:
                context.load_cert_chain(tls.certfile, tls.keyfile)
            context.check_hostname = not tls.insecure
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = lambda _c, _u, sock: self._driver.drive(sock, client)
        client.on_socket_close = lambda _c, _u, sock: self._driver.undrive(sock)
        client.on_socket_register_write = \
            lambda _c, _u, sock: self._driver.drive_writes(sock, client, True)
        client.on_socket_unregister_write = \
            lambda _c, _u, sock: self._driver.drive_writes(sock, client, False)
        return client

    def start(self) -> None:
        """Attach the local session, set its subscriptions to the out topics, connect."""
        now = time.monotonic()
        self.link.open(now)
        self._set_local_subscriptions(now)
        self._notify_here(b"0")
        config = self.config
        if config.notifications and not config.notifications_local_only:
            self.client.will_set(config.state_topic, b"0", qos=1, retain=True)
        self._connect()

    def _notify_here(self, state: bytes) -> None:
        """The bridge's state, retained on its notification topic in this broker."""
        if self.config.notifications:
            self._core.publish(Message(topic=self.config.state_topic, payload=state, qos=1,
                                       retain=True, origin=self.link.client_id),
                               time.monotonic())

    def stop(self) -> None:
        """Say goodbye to the remote broker (DISCONNECT: it discards the will) and detach the
        local session; what is queued stays in the store for the next start."""
        self._stopped = True
        config = self.config
        if self.stats.connected:
            self._notify_here(b"0")
            if config.notifications and not config.notifications_local_only:
                # A DISCONNECT discards the will: the state is set by hand, just before.
                self.client.publish(config.state_topic, b"0", qos=1, retain=True)
        if self.client.socket() is not None:
            self.client.disconnect()
            self.client.loop_write()
        self.link.close("the broker is stopping")

    def _set_local_subscriptions(self, now: float) -> None:
        conn = self.link.conn
        session = self._core.sessions.get(self.link.client_id)
        if conn is None or session is None:
            return
        wanted = {topic.local_filter: topic for topic in self.config.topics if topic.outgoing}
        stale = [f for f in session.subscriptions if f not in wanted]
        if stale:  # topics taken out of the configuration
            self.link.send(Unsubscribe(packet_id=1, topic_filters=stale), now)
        if wanted:
            self.link.send(Subscribe(packet_id=2, subscriptions=[
                Subscription(topic_filter=f, qos=t.qos, no_local=True, retain_as_published=True)
                for f, t in wanted.items()]), now)

    def _connect(self) -> None:
        if self._stopped:
            return
        config = self.config
        address = config.addresses[self._address_index % len(config.addresses)]
        host, port = split_address(address)
        self.stats.address = address
        if config.protocol == 5:
            properties = None
            if not config.clean_start:  # MQTT 5: persistent only with a Session Expiry
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = NEVER_EXPIRES
            self.client.connect_async(host, port, config.keepalive,
                                      clean_start=config.clean_start, properties=properties)
        else:
            self.client.connect_async(host, port, config.keepalive)
        password = None
        try:
            password = self.config.read_password()
        except OSError as exc:
            self._failed(f"cannot read password_file {self.config.password_file}: "
                         f"{exc.strerror or exc}")
            return
        if config.username is not None or password is not None:
            self.client.username_pw_set(config.username, password)
        threading.Thread(target=self._open_socket, args=(address,), daemon=True,
                         name=f"mqlite-bridge-{config.name}").start()

    def _open_socket(self, address: str) -> None:
        """On its own thread: the blocking connect, handed back to the loop."""
        try:
            sock = self.client.open_socket()
        except (OSError, ssl.SSLError) as exc:
            error = f"cannot connect to {address}: {exc.strerror or exc}" \
                if isinstance(exc, OSError) and exc.strerror else f"cannot connect to " \
                f"{address}: {exc}"
            self._driver.call_soon(lambda: self._failed(error))
            return
        self._driver.call_soon(lambda: self._attach(sock))

    def _attach(self, sock: Any) -> None:
        if self._stopped:
            sock.close()
            return
        self.client.attach_socket(sock)
        self.client.loop_write()  # the CONNECT
        if not self._keepalive_armed:
            self._keepalive_armed = True
            self._core.call_at(time.monotonic() + 1.0, self._tick)

    def _tick(self) -> None:
        """Once a second while connected: the client's keep alive."""
        if self.client.socket() is None or self._stopped:
            self._keepalive_armed = False
            return
        self.client.loop_misc()
        self._core.call_at(time.monotonic() + 1.0, self._tick)

    def _failed(self, error: str) -> None:
        """A connect failed or the connection ended: try again after the backoff."""
        if self.stats.connected and not self._stopped:
            self._notify_here(b"0")
        self.stats.connected = self.stats.subscribed = False
        self.stats.last_error = error
        if self._stopped:
            return
        base, cap = self.config.restart_timeout
        delay = min(cap, base * 2 ** min(self._attempt, 16))
        delay = random.uniform(delay / 2, delay)  # jitter: bridges restarted together spread
        self._attempt += 1
        if self.config.round_robin or self._attempt > 1:
            self._address_index += 1
        log.warning("bridge %s: %s; retrying in %.1f s", self.config.name, error, delay,
                    extra={"event": "bridge", "bridge": self.config.name})
        self._core.call_at(time.monotonic() + delay, self._connect)

    # -- remote events ----------------------------------------------------------------------

    def _on_connect(self, client: Client, _userdata: Any, flags: ConnectFlags,
                    reason_code: ReasonCode, _properties: Properties) -> None:
        if reason_code.is_failure:
            # The client closes the connection; _on_disconnect retries after the backoff.
            self.stats.last_error = f"refused by the remote broker: {reason_code}"
            return
        self._attempt = 0
        if not self.config.round_robin:
            self._address_index = 0
        self.stats.connected = True
        self.stats.connects += 1
        self.stats.last_error = ""
        config = self.config
        if config.notifications:
            self._notify_here(b"1")
            if not config.notifications_local_only:
                client.publish(config.state_topic, b"1", qos=1, retain=True)
        log.info("bridge %s connected to %s:%d (%s)", self.config.name, client.host,
                 client.port, "resumed session" if flags.session_present else "new session",
                 extra={"event": "bridge", "bridge": self.config.name})
        incoming = [topic for topic in self.config.topics if topic.incoming]
        self.stats.subscribed = not incoming
        if incoming:
            if self.config.protocol == 5:
                client.subscribe([(t.remote_filter, SubscribeOptions(
                    qos=t.qos, noLocal=True, retainAsPublished=True)) for t in incoming])
            else:
                client.subscribe([(t.remote_filter, t.qos) for t in incoming])

    def _on_disconnect(self, _client: Client, _userdata: Any, _flags: DisconnectFlags,
                       reason_code: ReasonCode, _properties: Properties) -> None:
        was = self.stats.connected
        error = self.stats.last_error if not was and self.stats.last_error else \
            f"disconnected: {reason_code}"
        if was:
            log.info("bridge %s disconnected: %s", self.config.name, reason_code,
                     extra={"event": "bridge", "bridge": self.config.name})
        self._failed(error)

    def _on_subscribe(self, _client: Client, _userdata: Any, _mid: int,
                      reason_codes: list[ReasonCode], _properties: Properties) -> None:
        for code in reason_codes:
            if code.is_failure:
                log.warning("bridge %s: the remote broker refused a subscription: %s",
                            self.config.name, code)
        self.stats.subscribed = True

    def _on_message(self, client: Client, _userdata: Any, message: MQTTMessage) -> None:
        """From the remote broker: published here; acknowledged there once stored here."""
        topic = self._incoming_topic(message.topic)
        if topic is None:  # not ours (a subscription of an earlier configuration)
            client.ack(message.mid, message.qos)
            return
        properties = EMPTY_PROPERTIES
        if self.config.protocol == 5 and message.properties is not None:
            properties = to_wire(message.properties)
        qos = min(message.qos, 1)
        self.stats.received += 1
        self.link.send(Publish(topic=topic.to_local(message.topic), payload=message.payload,
                               qos=qos, retain=message.retain,
                               packet_id=message.mid if qos else None,
                               properties=properties), time.monotonic())

    def _on_publish(self, _client: Client, _userdata: Any, mid: int, reason_code: ReasonCode,
                    _properties: Properties) -> None:
        """The remote broker acknowledged an outgoing QoS 1 message: acknowledge it here."""
        local_id = self._outgoing.pop(mid, None)
        if local_id is None:
            return
        if reason_code.is_failure:
            log.warning("bridge %s: the remote broker refused a message: %s",
                        self.config.name, reason_code)
        else:
            self.stats.sent += 1
        self.link.send(Puback(packet_id=local_id), time.monotonic())

    # -- from the local session -------------------------------------------------------------

    def _from_local(self, packets: list[Packet]) -> None:
        now = time.monotonic()
        for packet in packets:
            if isinstance(packet, Publish):
                self._forward(packet, now)
            elif isinstance(packet, Puback):
                # The local broker stored a message from the remote one: acknowledge it there.
                self.client.ack(packet.packet_id, 1)
            elif isinstance(packet, Suback):
                for code in packet.reason_codes:
                    if code >= 0x80:
                        log.warning("bridge %s: a local subscription was refused: 0x%02x",
                                    self.config.name, code)

    def _forward(self, packet: Publish, now: float) -> None:
        topic = self._outgoing_topic(packet.topic)
        if topic is None:
            if packet.qos and packet.packet_id is not None:
                self.link.send(Puback(packet_id=packet.packet_id), now)
            return
        if packet.qos == 0 and not self.stats.connected:
            self.stats.dropped += 1  # QoS 0 may be lost; queued, it would only grow
            return
        properties = None
        if self.config.protocol == 5 and packet.properties is not EMPTY_PROPERTIES:
            properties = from_wire(PacketTypes.PUBLISH, packet.properties)
        info = self.client.publish(topic.to_remote(packet.topic), packet.payload,
                                   qos=packet.qos, retain=packet.retain, properties=properties)
        if packet.qos and packet.packet_id is not None:
            self._outgoing[info.mid] = packet.packet_id
        elif self.stats.connected:
            self.stats.sent += 1

    def _outgoing_topic(self, local_topic: str) -> BridgeTopic | None:
        for topic in self.config.topics:
            if topic.outgoing and topic_matches_filter(topic.local_filter, local_topic):
                return topic
        return None

    def _incoming_topic(self, remote_topic: str) -> BridgeTopic | None:
        for topic in self.config.topics:
            if topic.incoming and topic_matches_filter(topic.remote_filter, remote_topic):
                return topic
        return None
