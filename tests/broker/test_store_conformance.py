"""One conformance suite for every SessionStore: what is written and committed comes back from
load() after a reopen, exactly; deletes cascade; state changes replace."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mqlite.broker import MemoryStore, SessionStore, SQLiteStore
from mqlite.broker.message import Message
from mqlite.broker.session import AWAIT_PUBCOMP, AWAIT_PUBREC, Delivery, SubscriptionOptions
from mqlite.broker.store import StoredSession
from mqlite.protocol import Properties, Will

Reopen = Callable[[], SessionStore]


@pytest.fixture(params=["memory", "sqlite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reopen]:
    """A function returning the store as a restarted broker would open it."""
    if request.param == "memory":
        memory = MemoryStore()
        yield lambda: memory
        return
    path = str(tmp_path / "conformance.db")
    opened: list[SQLiteStore] = []

    def reopen() -> SessionStore:
        if opened:
            opened[-1].close()
        opened.append(SQLiteStore(path))
        return opened[-1]

    yield reopen
    opened[-1].close()


def _message(topic: str = "t", **fields: object) -> Message:
    values: dict[str, object] = {"payload": b"\x00body", "qos": 1, "retain": False}
    values.update(fields)
    return Message(topic=topic, **values)  # type: ignore[arg-type]


def test_sessions_subscriptions_deliveries_inbound_retained_round_trip(stores: Reopen) -> None:
    store = stores()
    will = Will(topic="w", payload=b"bye", qos=1, retain=True,
                properties=Properties(will_delay_interval=5, user_property=(("a", "b"),)))
    store.save_session(StoredSession(client_id="c", protocol_version=5, expiry_interval=300,
                                     will=will, will_delay=5, disconnected_at=1234.5))
    options = SubscriptionOptions(qos=2, no_local=True, retain_as_published=True,
                                  retain_handling=1, identifier=7)
    store.save_subscription("c", "a/+", options)
    body = _message(properties=Properties(content_type="text/plain",
                                          user_property=(("k", "v"), ("k", "w")),
                                          correlation_data=b"\x01"),
                    expires_at=time.monotonic() + 100)
    first = Delivery(1, body, 1, False, (7,))
    second = Delivery(2, body, 2, True)
    second.packet_id, second.state = 9, AWAIT_PUBREC
    store.save_delivery("c", first)
    store.save_delivery("c", second)
    second.state = AWAIT_PUBCOMP  # a state change replaces the row
    store.save_delivery("c", second)
    store.add_inbound_qos2("c", 42)
    retained = _message("r/1", retain=True)
    store.save_retained(retained)
    store.commit()

    state = stores().load()
    session = state.sessions["c"]
    assert (session.protocol_version, session.expiry_interval, session.will_delay,
            session.disconnected_at) == (5, 300, 5, 1234.5)
    assert session.will == will
    assert state.subscriptions == {"c": {"a/+": options}}
    deliveries = state.deliveries["c"]
    assert sorted(deliveries) == [1, 2]
    assert (deliveries[1].qos, deliveries[1].retain, deliveries[1].packet_id,
            deliveries[1].subscription_ids) == (1, False, None, (7,))
    assert (deliveries[2].packet_id, deliveries[2].state, deliveries[2].retain) == (
        9, AWAIT_PUBCOMP, True)
    loaded = deliveries[1].message
    assert (loaded.topic, loaded.payload, loaded.properties) == (body.topic, body.payload,
                                                                 body.properties)
    assert loaded.expires_at is not None and abs(loaded.expires_at - body.expires_at) < 1
    assert state.inbound_qos2 == {"c": {42}}
    assert state.retained["r/1"].payload == retained.payload


def test_deletes(stores: Reopen) -> None:
    store = stores()
    store.save_session(StoredSession(client_id="gone", protocol_version=4,
                                     expiry_interval=0xFFFFFFFF))
    store.save_subscription("gone", "x", SubscriptionOptions())
    store.save_delivery("gone", Delivery(1, _message(), 1, False))
    store.add_inbound_qos2("gone", 1)
    store.save_session(StoredSession(client_id="kept", protocol_version=4, expiry_interval=10))
    store.save_subscription("kept", "x", SubscriptionOptions())
    store.save_subscription("kept", "y", SubscriptionOptions())
    store.save_delivery("kept", Delivery(1, _message(), 1, False))
    store.save_delivery("kept", Delivery(2, _message(), 1, False))
    store.add_inbound_qos2("kept", 5)
    store.save_retained(_message("r", retain=True))
    store.commit()
    store = stores()
    store.delete_session("gone")
    store.delete_subscription("kept", "x")
    store.delete_delivery("kept", 1)
    store.delete_inbound_qos2("kept", 5)
    store.delete_retained("r")
    store.commit()
    state = stores().load()
    assert set(state.sessions) == {"kept"}
    assert state.subscriptions.get("gone", {}) == {}
    assert set(state.subscriptions["kept"]) == {"y"}
    assert set(state.deliveries.get("kept", {})) == {2}
    assert not state.deliveries.get("gone")
    assert not state.inbound_qos2.get("kept") and not state.inbound_qos2.get("gone")
    assert state.retained == {}


def test_a_body_shared_by_queues_is_one_message(stores: Reopen) -> None:
    store = stores()
    body = _message()
    for client in ("a", "b", "c"):
        store.save_delivery(client, Delivery(1, body, 1, False))
    store.commit()
    state = stores().load()
    loaded = {state.deliveries[c][1].message.store_id for c in ("a", "b", "c")}
    assert len(loaded) == 1
