"""A publisher process for the durable-outbox tests, killed with SIGKILL by the test.

Usage: python outbox_child.py OUTBOX HOST PORT MODE COUNT
  offline:  publish COUNT QoS 1/2 messages without connecting, print "accepted", wait.
  inflight: connect (persistent session), publish COUNT QoS 2 messages with 10 in flight, write
            the first 10 PUBLISH packets and never read the broker's PUBRECs, print "sent", wait.
  resume:   connect with the same client id and outbox, print "done" when nothing is pending.
"""

from __future__ import annotations

import sys
import time

import mqlite.client as mqtt

OUTBOX, HOST, PORT, MODE, COUNT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], \
    int(sys.argv[5])


def main() -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id="outbox-child", clean_session=False, persistence=OUTBOX)
    client.max_inflight_messages_set(10)
    if MODE == "offline":
        for i in range(COUNT):
            client.publish("outbox/t", b"%d" % i, qos=1 + i % 2)
        print("accepted", flush=True)
        time.sleep(60)
    elif MODE == "inflight":
        client.connect(HOST, PORT)
        while not client.is_connected():
            client.loop(0.1)
        for i in range(COUNT):
            client.publish("outbox/t", b"%d" % i, qos=2)
        while client.want_write():
            client.loop_write()
        print("sent", flush=True)
        time.sleep(60)
    else:
        pending = client.pending_messages()
        print(f"restored {len(pending)}", flush=True)
        client.connect(HOST, PORT)
        client.loop_start()
        for info in pending:
            assert info.wait_for_publish(20), info.mid
        client.disconnect()
        client.loop_stop()
        print("done", flush=True)


if __name__ == "__main__":
    main()
