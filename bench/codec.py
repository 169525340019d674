"""Codec throughput: 64-byte QoS 0 PUBLISH packets decoded through the incremental reader, and
encoded, in packets per second (best of several rounds, to sidestep scheduler noise).

    python -m bench.codec [--packets N] [--rounds R] [--chunk BYTES]
"""

from __future__ import annotations

import argparse
import platform
import time

from mqlite.protocol import PacketReader, Publish, encode, encode_publish


def _publishes(count: int, version: int) -> list[Publish]:
    return [
        Publish(topic=f"sensors/room{i % 50}/temperature", payload=bytes(64), qos=0)
        for i in range(count)
    ]


def bench_decode(stream: bytes, chunk: int, count: int, version: int) -> float:
    reader = PacketReader("client", version=version)
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    decoded = 0
    start = time.perf_counter()
    for piece in chunks:
        for _ in reader.feed(piece):
            decoded += 1
    elapsed = time.perf_counter() - start
    if decoded != count:
        raise AssertionError(f"decoded {decoded} packets, expected {count}")
    return count / elapsed


def bench_encode(packets: list[Publish], version: int) -> float:
    start = time.perf_counter()
    for packet in packets:
        encode_publish(packet, version)
    return len(packets) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=65_536, help="bytes per feed() call")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{args.packets} packets of 64-byte payload, {args.chunk}-byte chunks, "
          f"best of {args.rounds}")
    print(f"{'':24}{'MQTT 3.1.1':>14}{'MQTT 5.0':>14}")
    rows: dict[str, list[float]] = {"decode (packets/s)": [], "encode (packets/s)": []}
    for version in (4, 5):
        packets = _publishes(args.packets, version)
        stream = b"".join(encode(p, version) for p in packets)
        rows["decode (packets/s)"].append(
            max(bench_decode(stream, args.chunk, args.packets, version) for _ in range(args.rounds))
        )
        rows["encode (packets/s)"].append(
            max(bench_encode(packets, version) for _ in range(args.rounds))
        )
    for name, values in rows.items():
        print(f"{name:24}" + "".join(f"{v:>14,.0f}" for v in values))


if __name__ == "__main__":
    main()
