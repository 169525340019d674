"""A bridge: this broker's topics carried to and from another MQTT broker.

Two MQTT sessions and a relay between them, on the broker's thread. The local side is an
in-process persistent session (:mod:`~mqlite.broker.net.local_link`) subscribed to the ``out``
topics; the remote side is mqlite's own client, on paho's external-loop contract, its socket in
the broker's selector, subscribed to the ``in`` topics. Each packet of a QoS 1/2 flow is passed
across with its packet id (relay.py), so a message stays in the sending side's session
until the other side has it, and QoS 2 stays exactly once. The local session is attached only
while the remote connection is up: while it is down, what goes out waits in the store like any
offline session's queue, and on each reconnect the local session sends again what it had in
flight.

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

from mqlite.client import MQTT_ERR_SUCCESS, CallbackAPIVersion, Client, MQTTv5, MQTTv311
from mqlite.client.mqtt5_types import (
    ConnectFlags,
    DisconnectFlags,
    PacketTypes,
    Properties,
    ReasonCode,
    SubscribeOptions,
)
from mqlite.protocol import Packet, Subscribe, Subscription, Unsubscribe

from ..config.broker_config import NEVER_EXPIRES
from ..engine.core import BrokerCore
from ..message import Message
from ..net.local_link import LocalLink
from ..net.loop_driven import LoopDriven
from .config import BridgeConfig, split_address
from .relay import Relay
from .stats import BridgeReporter, BridgeStats, waiting

log = logging.getLogger("mqlite.broker")


class BridgeDriver(Protocol):
    """What a bridge needs of the event loop (its plug-in sockets,
    :class:`~mqlite.broker.net.plugin_sockets.PluginSockets`): the remote client's socket
    watched, and a callback on the loop's thread."""

    def watch(self, sock: Any, driven: LoopDriven, *, write: bool) -> None: ...

    def unwatch(self, sock: Any) -> None: ...

    def call_soon(self, callback: Callable[[], None]) -> None: ...


class _ClientSocket(LoopDriven):
    """The remote client's socket on the loop's selector: paho's external-loop contract, its
    reads and writes made when the selector says."""

    __slots__ = ("client",)

    def __init__(self, client: Client) -> None:
        self.client = client

    def event(self, readable: bool, writable: bool) -> None:
        if readable:
            self.client.loop_read()
        if writable:
            self.client.loop_write()


class Bridge:
    def __init__(self, config: BridgeConfig, core: BrokerCore, driver: BridgeDriver,
                 reporter: BridgeReporter) -> None:
        """``reporter``: where operators see every bridge's counters (server.py wires it)."""
        self.config = config
        self.stats = reporter.stats[config.name] = BridgeStats(
            config.name, config.resolved_local_client_id)
        self._core = core
        self._driver = driver
        self._stopped = False
        self._attempt = 0  # failed connects in a row, for the backoff
        self._address_index = 0
        self._keepalive_armed = False
        self._last_traffic = 0.0  # monotonic time of the last message either way
        self._idle_closing = False  # start_type lazy: disconnecting for want of traffic
        self.link = LocalLink(core, config.resolved_local_client_id, config.name,
                              config.window, self._from_local, driver.call_soon)
        self.client = self._make_client()
        self.relay = Relay(config.name, config.topics, config.protocol, self.stats,
                           self._to_local, self._to_remote, lambda: self.client.unsent_bytes,
                           core.config.output_soft_limit)

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
        client.relay_set(self._from_remote)  # self.relay exists before the first packet
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
        client.on_subscribe = self._on_subscribe
        driven = _ClientSocket(client)
        client.on_socket_open = lambda _c, _u, sock: self._driver.watch(sock, driven,
                                                                         write=False)
        client.on_socket_close = lambda _c, _u, sock: self._driver.unwatch(sock)
        client.on_socket_register_write = \
            lambda _c, _u, sock: self._driver.watch(sock, driven, write=True)
        client.on_socket_unregister_write = \
            lambda _c, _u, sock: self._driver.watch(sock, driven, write=False)
        return client

    def start(self) -> None:
        """Make sure the local session exists with its subscriptions (so that the out topics
        queue for the remote broker even before it is first reached), publish the state (not
        connected yet) and connect."""
        self._attach_local(self.config.window)
        self.link.close("waiting for the remote broker")
        self._notify(b"0")
        config = self.config
        if config.notifications and not config.notifications_local_only:
            self.client.will_set(config.state_topic, b"0", qos=1, retain=True)
        if config.start_type == "lazy":
            self._wait_for_threshold()
        else:
            self._connect()

    def _waiting(self) -> int:
        return waiting(self._core.sessions.get(self.link.client_id))

    def _wait_for_threshold(self) -> None:
        """start_type lazy: connect once ``threshold`` messages wait (checked each second)."""
        if self._stopped:
            return
        if self._waiting() >= self.config.threshold:
            log.info("bridge %s: %d messages waiting, connecting (start_type lazy)",
                     self.config.name, self._waiting(),
                     extra={"event": "bridge", "bridge": self.config.name})
            self._connect()
        else:
            self._core.call_later(1.0, self._wait_for_threshold)

    def stop(self) -> None:
        """Say goodbye to the remote broker (DISCONNECT: it discards the will) and detach the
        local session; what is queued stays in the store for the next start."""
        self._stopped = True
        if self.stats.connected:
            self._notify(b"0")
        if self.client.socket() is not None:
            self.client.disconnect()
            self.client.loop_write()
        self.link.close("the broker is stopping")

    def _notify(self, state: bytes) -> None:
        """The bridge's state, retained on its notification topic in this broker and, while
        connected (unless notifications_local_only), on the remote one: a DISCONNECT there
        discards the will, so a chosen disconnect sets "0" by hand, just before."""
        config = self.config
        if not config.notifications:
            return
        self._core.publish(Message(topic=config.state_topic, payload=state, qos=1,
                                   retain=True, origin=self.link.client_id),
                           self._core.clock.monotonic())
        if self.stats.connected and not config.notifications_local_only:
            self.client.publish(config.state_topic, state, qos=0, retain=True)

    def _attach_local(self, receive_maximum: int) -> None:
        """Attach the local session (it sends again what it had in flight), its window no
        wider than the remote broker takes, and set its subscriptions to the out topics."""
        now = self._core.clock.monotonic()
        self.link.window = min(self.config.window, receive_maximum)
        self.link.open(now)
        conn = self.link.conn
        session = self._core.sessions.get(self.link.client_id)
        if conn is None or session is None:
            return
        wanted = {topic.local_filter: topic for topic in self.config.topics if topic.outgoing}
        stale = [f for f in session.subscriptions if f not in wanted]
        if stale:  # topics taken out of the configuration
            self.link.send(Unsubscribe(packet_id=1, topic_filters=stale), now)
        fresh = [f for f in wanted if f not in session.subscriptions]
        if fresh:  # retained messages go out when a subscription is new, not on each connect
            self.link.send(Subscribe(packet_id=2, subscriptions=[
                Subscription(topic_filter=f, qos=wanted[f].qos, no_local=True,
                             retain_as_published=True) for f in fresh]), now)

    def _connect(self) -> None:
        if self._stopped:
            return
        config = self.config
        address = config.addresses[self._address_index % len(config.addresses)]
        host, port = split_address(address)
        self.stats.address = address
        if config.protocol == 5:
            properties = Properties(PacketTypes.CONNECT)
            # QoS 1/2 messages the remote broker may have in flight to the bridge at once.
            properties.ReceiveMaximum = config.window
            if not config.clean_start:  # MQTT 5: persistent only with a Session Expiry
                properties.SessionExpiryInterval = NEVER_EXPIRES
            self.client.connect_async(host, port, config.keepalive,
                                      clean_start=config.clean_start, properties=properties)
        else:
            self.client.connect_async(host, port, config.keepalive)
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
        except OSError as exc:  # ssl.SSLError is one
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            error = f"cannot connect to {address}: {reason}"
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
            self._core.call_later(1.0, self._tick)

    def _tick(self) -> None:
        """Once a second while connected: the client's keep alive."""
        if self.client.socket() is None or self._stopped:
            self._keepalive_armed = False
            return
        self.client.loop_misc()
        config = self.config
        if (config.start_type == "lazy" and self.stats.connected and not self._idle_closing
                and time.monotonic() - self._last_traffic >= config.idle_timeout
                and not self._waiting()):
            log.info("bridge %s: idle for %.0f s, disconnecting (start_type lazy)",
                     config.name, config.idle_timeout,
                     extra={"event": "bridge", "bridge": config.name})
            self._idle_closing = True
            self._notify(b"0")
            self.client.disconnect()
        self._core.call_later(1.0, self._tick)

    def _failed(self, error: str) -> None:
        """A connect failed or the connection ended: try again after the backoff."""
        was_connected = self.stats.connected
        self.stats.connected = self.stats.subscribed = False
        if was_connected and not (self._stopped or self._idle_closing):  # those said so
            self._notify(b"0")
        self.link.close("the remote broker is away")
        if self._idle_closing:  # start_type lazy: by choice, until messages wait again
            self._idle_closing = False
            self._wait_for_threshold()
            return
        self.stats.last_error = error
        if self._stopped:
            return
        if self.config.start_type == "once":
            log.warning("bridge %s: %s; not reconnecting (start_type once)", self.config.name,
                        error, extra={"event": "bridge", "bridge": self.config.name})
            return
        base, cap = self.config.restart_timeout
        delay = min(cap, base * 2 ** min(self._attempt, 16))
        delay = random.uniform(delay / 2, delay)  # jitter: bridges restarted together spread
        self._attempt += 1
        if self.config.round_robin or self._attempt > 1:
            self._address_index += 1
        log.warning("bridge %s: %s; retrying in %.1f s", self.config.name, error, delay,
                    extra={"event": "bridge", "bridge": self.config.name})
        retry = self._wait_for_threshold if self.config.start_type == "lazy" else self._connect
        self._core.call_later(delay, retry)

    # -- remote events ----------------------------------------------------------------------

    def _on_connect(self, client: Client, _userdata: Any, flags: ConnectFlags,
                    reason_code: ReasonCode, properties: Properties) -> None:
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
        self._last_traffic = time.monotonic()
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
        self._notify(b"1")
        receive_maximum = getattr(properties, "ReceiveMaximum", None) or 65_535
        self._attach_local(int(receive_maximum))

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

    # -- between the two sides --------------------------------------------------------------

    def _from_local(self, packets: list[Packet]) -> None:
        self._last_traffic = time.monotonic()
        for packet in packets:
            self.relay.from_local(packet)

    def _from_remote(self, packet: Packet) -> None:
        self._last_traffic = time.monotonic()
        self.relay.from_remote(packet)

    def _to_local(self, packet: Packet) -> None:
        self.link.send(packet, self._core.clock.monotonic())

    def _to_remote(self, packet: Packet) -> bool:
        return self.client.relay_send(packet) == MQTT_ERR_SUCCESS
