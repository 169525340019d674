"""pytest plugin (entry point ``pytest11``, active once mqlite is installed): an MQTT broker in
the test process for every test that asks for it, and clients connected to it.

    def test_my_app(mqtt_broker):
        host, port = mqtt_broker            # or mqtt_broker.address
        run_my_app(host, port)
        [status] = mqtt_broker.wait_for("app/status")

    @pytest.mark.mqtt_broker(clock="manual")
    def test_the_will_waits(mqtt_broker, mqtt_client): ...

Fixtures: ``mqtt_broker`` (a started :class:`~mqlite.testing.TestBroker`), ``mqtt_client`` (a
connected :class:`~mqlite.testing.TestClient`), ``mqtt_async_client`` (an
:class:`~mqlite.testing.AsyncTestClient`; needs pytest-asyncio). Connections still open when
the broker stops are reported as a :class:`LeakedConnectionWarning`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from .broker import TestBroker, broker
from .clients import AsyncTestClient, TestClient

_client_ids = itertools.count(1)


class LeakedConnectionWarning(UserWarning):
    """Clients were still connected to the test broker when the test ended."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mqtt_broker(**settings): settings of the mqtt_broker fixture's broker "
                   "(clock='manual', db=path, or any broker setting)")
    config.addinivalue_line(
        "markers", "mqtt_client(**options): options of the mqtt_client fixtures "
                   "(version=5, client_id=..., clean=False)")


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
def mqtt_broker(request: pytest.FixtureRequest) -> Iterator[TestBroker]:
    """A broker for this test on a free loopback port, stopped after it. It unpacks to
    ``(host, port)``."""
    test_broker = broker(**_marker_kwargs(request, "mqtt_broker"))
    with test_broker:
        yield test_broker
        leaked = test_broker.clients() if test_broker._broker is not None else []
    if leaked:
        warnings.warn(LeakedConnectionWarning(
            f"{len(leaked)} client(s) still connected when the test ended: "
            f"{', '.join(repr(c.client_id) for c in leaked)} (disconnect them, or stop the "
            "application under test, before the test returns)"), stacklevel=1)


def _client_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options = _marker_kwargs(request, "mqtt_client")
    options.setdefault("client_id", f"mqtt-client-{next(_client_ids)}")
    return options


@pytest.fixture
def mqtt_client(mqtt_broker: TestBroker, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """mqlite's paho-compatible client, connected to ``mqtt_broker`` with its network loop in a
    background thread; disconnected after the test."""
    client = TestClient(mqtt_broker, **_client_options(request))
    try:
        yield client
    finally:
        client.close()


try:
    import pytest_asyncio
except ImportError:  # the asyncio fixture needs it; the rest does not
    @pytest.fixture
    def mqtt_async_client() -> None:
        """Needs pytest-asyncio."""
        pytest.fail("the mqtt_async_client fixture needs pytest-asyncio: "
                    "pip install pytest-asyncio")
else:
    @pytest_asyncio.fixture
    async def mqtt_async_client(  # type: ignore[misc]  # the fallback's name, for real
            mqtt_broker: TestBroker, request: pytest.FixtureRequest
    ) -> AsyncIterator[AsyncTestClient]:
        """mqlite's asyncio client, connected to ``mqtt_broker``; disconnected after."""
        client = AsyncTestClient(mqtt_broker, **_client_options(request))
        await client.start()
        try:
            yield client
        finally:
            await client.close()
