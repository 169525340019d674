"""A client process for the persistence tests: connect with a persistent session, print
whether the session was present, then print COUNT message payloads as they arrive (acking
each) and exit.

    python resume_client.py HOST PORT CLIENT_ID COUNT
"""

from __future__ import annotations

import socket
import sys

from mqlite.protocol import Connack, Connect, PacketReader, Puback, Publish, encode


def main() -> None:
    host, port, client_id, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    sock = socket.create_connection((host, port), timeout=10)
    reader = PacketReader("client", version=4)
    sock.sendall(encode(Connect(client_id=client_id, clean_start=False), 4))
    received = 0
    while received < count or (not received and not count):
        data = sock.recv(65536)
        if not data:
            break
        for packet in reader.feed(data):
            if isinstance(packet, Connack):
                print(f"session_present={packet.session_present}", flush=True)
                if not count:
                    return
            elif isinstance(packet, Publish):
                print(packet.payload.decode(), flush=True)
                received += 1
                if packet.packet_id is not None:
                    sock.sendall(encode(Puback(packet_id=packet.packet_id), 4))
    sock.close()


if __name__ == "__main__":
    main()
