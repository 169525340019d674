"""Recipe: an application's reconnection and its outbox across a broker restart.

A data logger publishes readings at QoS 1 through mqlite's client with a durable outbox: what
``publish()`` accepted is kept in SQLite until the broker acknowledges it, whether the broker
is up or not. The test crashes the broker in the middle and checks that every reading arrives.
"""

from __future__ import annotations

from pathlib import Path

import mqlite.client as mqtt
from mqlite.testing import TestBroker


def test_no_reading_is_lost_when_the_broker_crashes(mqtt_broker: TestBroker,
                                                    tmp_path: Path) -> None:
    logger = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "logger", clean_session=False,
                         persistence=str(tmp_path / "outbox.db"))
    logger.reconnect_delay_set(0.05, 0.2)
    logger.connect(*mqtt_broker.address)
    logger.loop_start()
    mqtt_broker.wait_for_client("logger")
    sent = [logger.publish("readings/t", str(n), qos=1) for n in range(5)]
    mqtt_broker.kill()  # as kill -9: whatever was not acknowledged stays in the outbox
    sent += [logger.publish("readings/t", str(n), qos=1) for n in range(5, 10)]
    mqtt_broker.restart()
    for info in sent:
        info.wait_for_publish(10)
    arrived = {m.payload for m in mqtt_broker.wait_for("readings/t", count=10)}
    assert arrived == {str(n).encode() for n in range(10)}  # some perhaps twice: QoS 1
    logger.disconnect()
    logger.loop_stop()
