"""aiomqtt (asyncio, on paho) against the broker, MQTT 3.1.1 and 5.0."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from mqlite.broker import Broker


@pytest.mark.parametrize("protocol", [aiomqtt.ProtocolVersion.V311, aiomqtt.ProtocolVersion.V5])
def test_aiomqtt_round_trip(broker: Broker, protocol: aiomqtt.ProtocolVersion) -> None:
    host, port = broker.address

    async def main() -> list[tuple[str, bytes, int]]:
        async with aiomqtt.Client(host, port, identifier="aio", protocol=protocol) as client:
            await client.subscribe("aio/#", qos=2)
            for qos in (0, 1, 2):
                await client.publish(f"aio/{qos}", f"q{qos}".encode(), qos=qos)
            received = []
            async with asyncio.timeout(5):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    received.append((str(message.topic), message.payload, message.qos))
                    if len(received) == 3:
                        break
            return received

    assert asyncio.run(main()) == [("aio/0", b"q0", 0), ("aio/1", b"q1", 1), ("aio/2", b"q2", 2)]
