"""pytest plugin (entry point ``pytest11``): a ``mqtt_broker`` fixture starting an in-process
mqlite broker on a free port, so MQTT applications are tested without Docker::

    def test_my_app(mqtt_broker):
        host, port = mqtt_broker
        client.connect(host, port)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import Broker


@pytest.fixture
def mqtt_broker() -> Iterator[tuple[str, int]]:
    """The (host, port) of a fresh broker for this test; stopped afterwards."""
    with Broker(host="127.0.0.1", port=0) as broker:
        yield broker.address
