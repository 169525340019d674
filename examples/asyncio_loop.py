"""The asyncio API: awaited publish and subscribe, messages by async iteration.

    python examples/asyncio_loop.py [--host HOST] [--port PORT]
"""

from __future__ import annotations

import argparse
import asyncio

from mqlite.client.aio import AsyncClient


async def main(host: str, port: int) -> None:
    async with AsyncClient(host, port, client_id="example-asyncio") as client:
        codes = await client.subscribe("examples/asyncio/#", qos=1)
        print(f"subscribed: {[str(code) for code in codes]}")
        for n in range(3):
            # Returns once the broker's PUBACK is in.
            mid = await client.publish(f"examples/asyncio/{n}", f"reading {n}", qos=1)
            print(f"published mid {mid}")
        count = 0
        async for message in client.messages():
            print(f"{message.topic}: {message.payload.decode()}")
            count += 1
            if count == 3:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
