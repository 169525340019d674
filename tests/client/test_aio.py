"""The asyncio API: async with, awaited publish/subscribe, async iteration, reconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mqlite.broker import Broker
from mqlite.client.aio import AsyncClient
from tests.conftest import BrokerFactory

TIMEOUT = 10.0


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_publish_subscribe_and_iterate(broker: Broker, version: int) -> None:
    host, port = broker.address

    async def main() -> list[tuple[str, bytes, int]]:
        async with AsyncClient(host, port, client_id="aio-1", protocol=version) as client:
            codes = await client.subscribe("aio/#", qos=2)
            assert [int(code.value) for code in codes] == [2]
            for qos in range(3):
                await client.publish(f"aio/{qos}", b"p%d" % qos, qos=qos)
            seen = []
            async for message in client.messages():
                seen.append((message.topic, message.payload, message.qos))
                if len(seen) == 3:
                    break
            return seen

    assert run(main()) == [("aio/0", b"p0", 0), ("aio/1", b"p1", 1), ("aio/2", b"p2", 2)]


def test_msgpack_round_trip(broker: Broker) -> None:
    host, port = broker.address

    async def main() -> Any:
        async with AsyncClient(host, port, client_id="aio-mp", protocol=5) as client:
            await client.subscribe("aio/mp", 1)
            await client.publish_msgpack("aio/mp", {"temp": 21.5, "tags": ["a", "b"]}, qos=1)
            async for message in client.messages():
                return message.unpack_msgpack(), message.properties.ContentType

    assert run(main()) == ({"temp": 21.5, "tags": ["a", "b"]}, "application/msgpack")


def test_connect_failure_raises(broker: Broker) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        async with AsyncClient("127.0.0.1", port, client_id="aio-none"):
            pass

    with pytest.raises(OSError):
        run(main())


def test_reconnects_and_resubscribes_after_broker_restart(make_broker: BrokerFactory) -> None:
    first = make_broker()
    port = first.address[1]

    async def main() -> bytes:
        client = AsyncClient("127.0.0.1", port, client_id="aio-re", reconnect_delay=(0.05, 0.2))
        async with client:
            await client.subscribe("aio/re", 1)
            await asyncio.get_running_loop().run_in_executor(None, first.stop)
            second = make_broker(port=port)
            assert second.address[1] == port
            while client.connection_count < 2 or not client.is_connected():
                await asyncio.sleep(0.02)
            # The broker restarted empty; the client made its subscription again. Publish
            # until the (asynchronous) resubscription has landed.
            messages = client.messages()
            while True:
                await client.publish("aio/re", b"back", qos=1)
                try:
                    message = await asyncio.wait_for(messages.__anext__(), 0.2)
                    return message.payload
                except TimeoutError:
                    continue

    assert run(main()) == b"back"

