"""What an idle connection costs the broker's Python heap, by allocation site (tracemalloc).

    python -m bench.connection_memory [--count 1000] [--top 15]

The broker runs in this process so tracemalloc sees its objects; the clients are raw sockets
in a child process, so their objects are not counted. Scenario D of ``python -m bench`` measures
the whole process's RSS instead, kernel-side buffers aside.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tracemalloc

from mqlite.broker import Broker

# The child: opens the connections, reports when every CONNACK is in, then holds them until
# told on stdin.
_CLIENTS = """
import socket, sys
from mqlite.protocol import Connect, encode
port, count = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(encode(Connect(client_id=f"idle{i}", keep_alive=60), 4))
    socks.append(s)
for s in socks:
    s.recv(16)
print("connected", flush=True)
sys.stdin.readline()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--top", type=int, default=15)
    options = parser.parse_args()
    tracemalloc.start(1)
    with Broker(port=0) as broker:
        gc.collect()
        before = tracemalloc.take_snapshot()
        clients = subprocess.Popen([sys.executable, "-c", _CLIENTS, str(broker.address[1]),
                                    str(options.count)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        assert clients.stdout is not None and clients.stdin is not None
        if clients.stdout.readline().strip() != "connected":
            raise SystemExit("the clients did not connect")
        # Every CONNACK has left, so the broker has handled every CONNECT.
        gc.collect()
        after = tracemalloc.take_snapshot()
        clients.stdin.write("done\n")
        clients.stdin.close()
        clients.wait(30)
    stats = [s for s in after.compare_to(before, "lineno") if s.size_diff > 0]
    total = sum(s.size_diff for s in stats)
    print(f"{total / options.count:,.0f} bytes of Python heap per idle connection "
          f"({options.count} connections)")
    for stat in stats[:options.top]:
        frame = stat.traceback[0]
        print(f"{stat.size_diff / options.count:8.1f} B  {stat.count_diff / options.count:5.2f} "
              f"blocks  {frame.filename}:{frame.lineno}")


if __name__ == "__main__":
    main()
