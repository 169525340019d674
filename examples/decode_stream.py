"""Drive the sans-IO protocol core by hand: encode packets, cut the byte stream into awkward
chunks, and read the packets back with the incremental reader, as a server would.

    python examples/decode_stream.py
"""

from __future__ import annotations

from mqlite.protocol import (
    Connect,
    MQTTError,
    PacketReader,
    Properties,
    Publish,
    Subscribe,
    Subscription,
    encode,
)


def main() -> None:
    stream = b"".join([
        encode(Connect(client_id="sensor-7", protocol_version=5,
                       properties=Properties(session_expiry_interval=3600)), 5),
        encode(Subscribe(packet_id=1, subscriptions=[Subscription(topic_filter="cmd/#", qos=1)]),
               5),
        encode(Publish(topic="sensors/7/temp", payload=b"21.5", qos=1, packet_id=2,
                       properties=Properties(content_type="text/plain")), 5),
    ])
    # A server-side reader learns the protocol level from CONNECT and refuses anything else
    # first; the size limit applies from the fixed header, before any body is buffered.
    reader = PacketReader("server", max_packet_size=64 * 1024)
    for start in range(0, len(stream), 7):  # 7-byte chunks: packets split anywhere
        for packet in reader.feed(stream[start : start + 7]):
            print(f"{type(packet).__name__:10} {packet}")

    # Bad input raises the core's own error carrying the reason code to answer with.
    try:
        list(reader.feed(bytes.fromhex("3005ffff616161")))  # topic length past the end
    except MQTTError as error:
        print(f"rejected: {error} (reason code 0x{error.reason_code:02X})")


if __name__ == "__main__":
    main()
