"""A paho-mqtt 2.x program, run unchanged against paho-mqtt and against mqlite.client.

Usage: python compat_program.py paho|mqlite HOST PORT 4|5. It prints a transcript of what it
observed; the test runs it with both modules and requires the same transcript.
"""

from __future__ import annotations

import importlib
import sys
import threading
import warnings
from typing import Any

MODULES = {"paho": "paho.mqtt.client", "mqlite": "mqlite.client"}
mqtt: Any = importlib.import_module(MODULES[sys.argv[1]])
HOST, PORT, VERSION = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
TIMEOUT = 10
lines: list[str] = []
lock = threading.Lock()


def say(text: str) -> None:
    with lock:
        lines.append(text)


def make(client_id: str, **kwargs: Any) -> Any:
    protocol = mqtt.MQTTv5 if VERSION == 5 else mqtt.MQTTv311
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id, protocol=protocol, **kwargs)


def main() -> None:
    say(f"topic_matches_sub: {mqtt.topic_matches_sub('a/+/c', 'a/b/c')} "
        f"{mqtt.topic_matches_sub('a/#', 'a')} {mqtt.topic_matches_sub('+/x', '$SYS/x')}")
    say(f"constants: {mqtt.MQTT_ERR_SUCCESS} {mqtt.MQTT_ERR_NO_CONN} {mqtt.MQTT_ERR_QUEUE_SIZE}")
    say(f"error_string: {mqtt.error_string(mqtt.MQTT_ERR_NO_CONN)}")
    say(f"connack_string: {mqtt.connack_string(5)}")

    connected = threading.Event()
    subscribed = threading.Event()
    got_all = threading.Event()
    received: list[str] = []
    special: list[str] = []

    client = make("compat-main", userdata={"name": "main"})
    client.username_pw_set("user", "secret")
    client.will_set("compat/will", b"gone", qos=1, retain=False)
    client.max_inflight_messages_set(5)
    client.max_queued_messages_set(100)
    client.reconnect_delay_set(1, 2)

    def on_connect(c: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        say(f"on_connect userdata={userdata['name']} session_present={flags.session_present} "
            f"rc={reason_code} is_failure={reason_code.is_failure} eq0={reason_code == 0}")
        if VERSION == 5:
            options = mqtt.SubscribeOptions(qos=2, noLocal=False)
            c.subscribe([("compat/data/#", options), ("compat/special", options)])
        else:
            c.subscribe([("compat/data/#", 2), ("compat/special", 2)])
        connected.set()

    def on_subscribe(c: Any, userdata: Any, mid: int, codes: list[Any], properties: Any) -> None:
        say(f"on_subscribe codes={[str(code) for code in codes]} "
            f"values={[int(code.value) for code in codes]}")
        subscribed.set()

    def on_message(c: Any, userdata: Any, message: Any) -> None:
        extra = ""
        if VERSION == 5 and message.properties is not None and \
                hasattr(message.properties, "UserProperty"):
            extra = f" user={message.properties.UserProperty}"
        received.append(f"{message.topic} {message.payload!r} qos={message.qos} "
                        f"retain={message.retain}{extra}")
        if len(received) + len(special) == 4:
            got_all.set()

    def on_special(c: Any, userdata: Any, message: Any) -> None:
        special.append(f"special {message.payload!r}")
        if len(received) + len(special) == 4:
            got_all.set()

    published: list[int] = []

    def on_publish(c: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        published.append(mid)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_publish = on_publish
    client.message_callback_add("compat/special", on_special)
    say(f"connect rc={client.connect(HOST, PORT, keepalive=30)}")
    started = client.loop_start()
    assert connected.wait(TIMEOUT) and subscribed.wait(TIMEOUT)
    say(f"loop_start rc={started}")
    say(f"is_connected={client.is_connected()}")

    infos = []
    for qos in (0, 1, 2):
        properties = None
        if VERSION == 5:
            properties = mqtt.Properties(mqtt.PacketTypes.PUBLISH)
            properties.UserProperty = ("k", f"v{qos}")
        infos.append(client.publish(f"compat/data/{qos}", f"payload {qos}", qos=qos,
                                    properties=properties))
    infos.append(client.publish("compat/special", 42, qos=1))
    for info in infos:
        rc, mid = info
        info.wait_for_publish(TIMEOUT)  # paho returns None, mqlite True: not compared
        say(f"publish rc={rc} mid_matches={mid == info.mid} published={info.is_published()}")
    assert got_all.wait(TIMEOUT)
    for line in sorted(received):
        say(f"received {line}")
    say(f"special callback: {special}")
    say(f"on_publish mids match: {sorted(published) == sorted(i.mid for i in infos)}")

    try:
        client.publish("compat/#", b"x")
    except ValueError:
        say("wildcard publish raises ValueError")
    try:
        client.publish("compat/x", b"x", qos=3)
    except ValueError:
        say("qos 3 raises ValueError")

    unsubscribed = threading.Event()
    client.on_unsubscribe = lambda c, u, mid, codes, props: unsubscribed.set()
    rc, _ = client.unsubscribe("compat/data/#")
    say(f"unsubscribe rc={rc} acked={unsubscribed.wait(TIMEOUT)}")

    manual(client)

    disconnected = threading.Event()
    seen: list[str] = []

    def on_disconnect(c: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        seen.append(f"on_disconnect rc={reason_code} "
                    f"from_server={flags.is_disconnect_packet_from_server}")
        disconnected.set()

    client.on_disconnect = on_disconnect
    # disconnect()'s return code is not compared: paho's loop thread can close the socket
    # before disconnect() returns, which then reports MQTT_ERR_NO_CONN (seen ~1 run in 3).
    client.disconnect()
    assert disconnected.wait(TIMEOUT)
    say(seen[0])
    client.loop_stop()
    say(f"is_connected after disconnect={client.is_connected()}")
    version1()


def version1() -> None:
    """A paho 1.x program: no callback API version (VERSION1, deprecated), its callbacks'
    shapes; one message id space for SUBSCRIBE, PUBLISH and UNSUBSCRIBE; on_publish before
    wait_for_publish() returns."""
    protocol = mqtt.MQTTv5 if VERSION == 5 else mqtt.MQTTv311
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = mqtt.Client(client_id="compat-v1", protocol=protocol)
    say(f"v1 warning: {[(w.category.__name__, str(w.message)) for w in caught]}")
    done = {name: threading.Event() for name in ("connect", "subscribe", "publish",
                                                  "unsubscribe", "disconnect")}

    def on_connect(c: Any, userdata: Any, flags: Any, rc: Any, *properties: Any) -> None:
        say(f"v1 on_connect flags={flags} rc={rc!s} {type(rc).__name__ == 'int'} "
            f"properties={len(properties)}")
        done["connect"].set()

    def on_subscribe(c: Any, userdata: Any, mid: int, granted: Any, *properties: Any) -> None:
        say(f"v1 on_subscribe mid={mid} granted={[str(g) for g in granted]} "
            f"properties={len(properties)}")
        done["subscribe"].set()

    def on_publish(c: Any, userdata: Any, mid: int) -> None:
        say(f"v1 on_publish mid={mid}")
        done["publish"].set()

    def on_unsubscribe(c: Any, userdata: Any, mid: int, *rest: Any) -> None:
        codes = [str(r) for r in rest[1:]] if rest else []
        say(f"v1 on_unsubscribe mid={mid} rest={len(rest)} codes={codes}")
        done["unsubscribe"].set()

    def on_disconnect(c: Any, userdata: Any, rc: Any, *properties: Any) -> None:
        say(f"v1 on_disconnect rc={int(rc)} properties={properties}")
        done["disconnect"].set()

    client.on_connect, client.on_subscribe, client.on_publish = \
        on_connect, on_subscribe, on_publish
    client.on_unsubscribe, client.on_disconnect = on_unsubscribe, on_disconnect
    client.connect(HOST, PORT)
    client.loop_start()
    assert done["connect"].wait(TIMEOUT)
    _, sub_mid = client.subscribe("compat/v1", 1)
    assert done["subscribe"].wait(TIMEOUT)
    info = client.publish("compat/v1/x", b"v1", qos=1)
    info.wait_for_publish(TIMEOUT)
    say(f"v1 mids: subscribe={sub_mid} publish={info.mid} "
        f"on_publish before wait_for_publish returned={done['publish'].is_set()}")
    _, unsub_mid = client.unsubscribe("compat/v1")
    assert done["unsubscribe"].wait(TIMEOUT)
    say(f"v1 unsubscribe mid={unsub_mid}")
    client.disconnect()
    assert done["disconnect"].wait(TIMEOUT)
    client.loop_stop()


def manual(publisher: Any) -> None:
    """manual_ack: a message is acknowledged only by ack()."""
    got = threading.Event()
    box: list[Any] = []
    subscriber = make("compat-manual", manual_ack=True)
    subscriber.on_message = lambda c, u, m: (box.append(m), got.set())
    ready = threading.Event()
    subscriber.on_subscribe = lambda c, u, mid, codes, props: ready.set()
    subscriber.on_connect = lambda c, u, f, rc, p: c.subscribe("compat/manual", 1)
    subscriber.connect(HOST, PORT)
    subscriber.loop_start()
    assert ready.wait(TIMEOUT)
    publisher.publish("compat/manual", b"m", qos=1).wait_for_publish(TIMEOUT)
    assert got.wait(TIMEOUT)
    say(f"manual ack rc={subscriber.ack(box[0].mid, box[0].qos)}")
    subscriber.disconnect()
    subscriber.loop_stop()


if __name__ == "__main__":
    main()
    print("\n".join(lines))
