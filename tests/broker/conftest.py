"""Brokers on port 0, started in-process and stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mqlite.broker import Broker

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
