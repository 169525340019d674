"""Recipe: testing an aiomqtt application.

The application answers each order on ``orders/<id>`` with a receipt on ``receipts/<id>``, and
tells its caller why it could not start.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from mqlite.testing import TestBroker


async def serve_orders(host: str, port: int, ready: asyncio.Event) -> None:
    async with aiomqtt.Client(host, port=port, identifier="orders-service") as client:
        await client.subscribe("orders/+", qos=1)
        ready.set()
        async for message in client.messages:
            order = str(message.topic).split("/")[1]
            await client.publish(f"receipts/{order}", b"paid", qos=1)


@pytest.mark.asyncio
async def test_each_order_gets_a_receipt(mqtt_broker: TestBroker, mqtt_async_client) -> None:
    ready = asyncio.Event()
    service = asyncio.create_task(serve_orders(*mqtt_broker.address, ready))
    await asyncio.wait_for(ready.wait(), 5)
    await mqtt_async_client.subscribe("receipts/#", qos=1)
    await mqtt_async_client.publish("orders/42", b"2 coffees", qos=1)
    [receipt] = await mqtt_async_client.wait_for("receipts/42")
    assert receipt.payload == b"paid"
    service.cancel()
    with pytest.raises(asyncio.CancelledError):
        await service


@pytest.mark.asyncio
async def test_a_refused_start_raises_aiomqtts_error(mqtt_broker: TestBroker) -> None:
    mqtt_broker.refuse_connects(0x87)
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        await serve_orders(*mqtt_broker.address, asyncio.Event())
