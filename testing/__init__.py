"""Testing MQTT applications: a real broker in the test's process, which records what it
accepted and misbehaves on demand (dropped connections, withheld acknowledgements, refused
CONNECTs, a crash and restart, a full disk), with a clock a test can move ahead.

    from mqlite.testing import broker

    with broker(clock="manual") as b:
        ...
        b.advance(90)       # a will delay of 90 s, passed at once

The pytest plugin (:mod:`mqlite.testing.pytest_plugin`) gives the fixtures ``mqtt_broker``,
``mqtt_client`` and ``mqtt_async_client``.
"""

from .broker import ClientView, Fault, SessionView, TestBroker, Withheld, broker
from .clients import AsyncTestClient, TestClient
from .records import Published

__all__ = ["AsyncTestClient", "ClientView", "Fault", "Published", "SessionView", "TestBroker",
           "TestClient", "Withheld", "broker"]
