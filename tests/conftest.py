"""Test-wide settings and broker fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

from mqlite.broker import Broker
from mqlite.broker.engine import connection, negotiated, session

from .tls_certs import certificates  # noqa: F401  (a fixture for every test module)

# No per-example deadline: a loaded 2-core CI machine must not turn slowness into failures.
# In CI the examples are derandomized so that a run is reproducible.
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Brokers on port 0, started in-process and stopped after each test.
BrokerFactory = Callable[..., Broker]


@pytest.fixture
def make_broker() -> Iterator[BrokerFactory]:
    started: list[Broker] = []

    def make(**settings: Any) -> Broker:
        settings.setdefault("port", 0)
        broker = Broker(**settings)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture
def broker(make_broker: BrokerFactory) -> Broker:
    return make_broker()


@pytest.fixture(params=[4, 5], ids=["3.1.1", "5.0"])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(autouse=True)
def _shared_empty_containers_stay_empty() -> Iterator[None]:
    """Sessions and connections share one empty container each until they need their own;
    one filled by mistake would show up in every other session. Checked after every test."""
    yield
    for name in ("_NOTHING_QUEUED", "NOTHING_IN_FLIGHT", "_NO_SUBSCRIPTIONS", "_NO_INBOUND_QOS2"):
        assert not getattr(session, name), name
    assert not connection.NO_OUTPUT
    shared = negotiated.DEFAULTS
    assert (shared.receive_maximum, shared.max_packet_size, shared.topic_alias_maximum,
            shared.inbound_aliases, shared.outbound_aliases) == (65_535, None, 0, {}, {})
