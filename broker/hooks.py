"""Extension points: a :class:`Hook` subclass overrides the methods it needs; every method's
default allows and changes nothing. ``Broker(hooks=[...])`` runs several in order.

Hooks run on the broker's loop thread, between packets: a slow hook stalls every client of the
broker. The exception is authentication: a hook with ``blocking = True`` (it hashes slowly, or
asks a network service) has its ``on_connect_authenticate`` called on a worker thread, and only
that CONNECT waits for it. A hook that raises is logged with its class name and counts as a
refusal for authentication and access checks, and as "no change" for the others; it never
stops the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .message import Message

log = logging.getLogger("mqlite.broker")


class Access(Enum):
    """What an access check is for: reading (subscribing, and each delivery) or writing
    (publishing, a will, a retained message)."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientInfo:
    """Who a connection is, as hooks see it."""

    client_id: str
    peer: str  # "address:port"
    listener: str  # the listener's name, e.g. "tcp:1883"
    protocol_version: int  # 3, 4 or 5
    username: str | None = None
    # The TLS peer certificate (ssl's getpeercert() form) on a TLS listener that asks for one.
    peer_certificate: dict[str, Any] | None = None
    # MQTT 5 enhanced authentication: the method the client authenticated with (the
    # username is then the one it proved), e.g. "SCRAM-SHA-256".
    auth_method: str | None = None


class Hook:
    """Override what you need; each default allows, or leaves the message as it is."""

    # True: on_connect_authenticate may block, so it is called on a worker thread (it must
    # then touch nothing of the broker's but its arguments), unless quick_answer answers.
    blocking = False

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        """Whether the client may connect; asked at each CONNECT, on a worker thread when
        the hook sets ``blocking = True``. Refused: CONNACK 0x87 (MQTT 3.1.x: return code 5).
        An answer that does not come within ``connect_timeout``: CONNACK 0x88 (3.1.x: 3)."""
        return True

    def quick_answer(self, client: ClientInfo, username: str | None,
                     password: bytes | None) -> bool | None:
        """For a blocking hook, on the loop's thread first: the answer when it is known
        without blocking (a cache, a rule), or None to ask ``on_connect_authenticate`` on a
        worker."""
        return None

    def on_acl_check(self, client: ClientInfo, topic: str, access: Access) -> bool:
        """Whether ``client`` may read or write ``topic``. ``Access.READ``: each
        subscription (the filter as sent; for a shared subscription the one within it, without
        ``$share/<group>/``) and each delivery (the topic); ``Access.WRITE``: each PUBLISH
        (retained too) and the will at CONNECT. Always on the loop's thread: keep it to string
        tests.

        Refused: SUBACK 0x87 (3.1.1: 0x80); PUBACK / PUBREC 0x87 (3.1.x: acknowledged and
        dropped; QoS 0: dropped); a refused will: CONNACK 0x87 (3.1.x: 5); a refused delivery
        is skipped."""
        return True

    def on_publish(self, client: ClientInfo, message: Message) -> Message | None:
        """The message to route: this one, a changed one (``dataclasses.replace``), or None to
        drop it; asked for each PUBLISH allowed to be written. It is acknowledged either way
        (MQTT 5: a dropped one with 0x10, no matching subscribers)."""
        return message

    def on_connect(self, client: ClientInfo) -> None:
        """The client connected (its CONNACK is queued)."""

    def on_disconnect(self, client: ClientInfo, reason: str) -> None:
        """The client's connection ended, for ``reason``."""

    def on_subscribe(self, client: ClientInfo, topic_filter: str, qos: int) -> None:
        """A subscription was made (or replaced) at ``qos``."""

    def on_unsubscribe(self, client: ClientInfo, topic_filter: str) -> None:
        """A subscription was removed."""

    def on_session_expired(self, client_id: str) -> None:
        """A persistent session expired and was discarded."""

    def on_message_dropped(self, session: str | None, message: Message, reason: str) -> None:
        """A message was dropped for the session with client id ``session`` (None: before
        reaching a session), for ``reason``: a full queue, too large for the client."""


class Hooks:
    """The registered hooks, run in order. ``active`` is False without any, so the hot path
    costs one attribute test; ``checks_access`` and ``rewrites`` are True only when some hook
    overrides ``on_acl_check`` or ``on_publish`` (an authentication hook alone costs the
    messages nothing)."""

    __slots__ = ("_hooks", "active", "checks_access", "rewrites", "trusted")

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._hooks = list(hooks)
        # Client ids every access check allows without asking: bridges' sessions here (what a
        # bridge carries is the operator's configuration; mosquitto's bridges pass its ACLs).
        self.trusted: set[str] = set()
        for hook in self._hooks:
            if not isinstance(hook, Hook):
                raise TypeError(f"hooks must be Hook instances, not {type(hook).__name__}")
        self._overrides()

    def insert_first(self, hook: Hook) -> None:
        """Run ``hook`` before the others (the built-in authentication, enabled on reload)."""
        self._hooks.insert(0, hook)
        self._overrides()

    def _overrides(self) -> None:
        self.active = bool(self._hooks)
        self.checks_access = any(type(hook).on_acl_check is not Hook.on_acl_check
                                 for hook in self._hooks)
        self.rewrites = any(type(hook).on_publish is not Hook.on_publish for hook in self._hooks)

    @property
    def registered(self) -> list[Hook]:
        """The hooks, in the order they run."""
        return self._hooks

    def allowed(self, client: ClientInfo, topic: str, access: Access) -> bool:
        if client.client_id in self.trusted:
            return True
        return self._all_allow("on_acl_check", client, topic, access)

    def _all_allow(self, method: str, *args: Any) -> bool:
        """Ask each hook in turn; a refusal, or a hook that raises, ends it with False."""
        for hook in self._hooks:
            try:
                if not getattr(hook, method)(*args):
                    return False
            except Exception:
                hook_failed(hook, method, "refused")
                return False
        return True

    def publish(self, client: ClientInfo, message: Message) -> Message | None:
        for hook in self._hooks:
            try:
                changed = hook.on_publish(client, message)
            except Exception:
                hook_failed(hook, "on_publish", "message unchanged")
                continue
            if changed is None:
                return None
            message = changed
        return message

    def notify(self, event: str, *args: Any) -> None:
        """Call ``event`` (an ``on_...`` method with nothing to return) on every hook."""
        for hook in self._hooks:
            try:
                getattr(hook, event)(*args)
            except Exception:
                hook_failed(hook, event, "ignored")


def hook_failed(hook: Hook, method: str, outcome: str) -> None:
    log.exception("hook %s.%s raised (%s)", type(hook).__name__, method, outcome)
