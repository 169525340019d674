"""The pytest plugin's fixtures, run inside a pytester session as a user's tests would be."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USERS_TESTS = '''
import pytest
import mqlite.client as mqtt


def test_the_old_tuple_use_keeps_working(mqtt_broker):
    host, port = mqtt_broker
    assert host == "127.0.0.1" and port > 0


@pytest.mark.mqtt_broker(clock="manual")
def test_a_marker_configures_the_broker(mqtt_broker, mqtt_client):
    mqtt_client.subscribe("a/#", 1)
    mqtt_broker.publish("a/b", "x", qos=1)
    assert mqtt_client.wait_for("a/#")[0].payload == b"x"
    mqtt_broker.advance(10)


@pytest.mark.mqtt_client(version=5, client_id="five")
def test_a_marker_configures_the_client(mqtt_broker, mqtt_client):
    [view] = mqtt_broker.clients()
    assert (view.client_id, view.protocol_version) == ("five", 5)


@pytest.mark.asyncio
async def test_the_asyncio_client(mqtt_broker, mqtt_async_client):
    await mqtt_async_client.subscribe("x/#", 1)
    await mqtt_async_client.publish("x/1", b"y", qos=1)
    [message] = await mqtt_async_client.wait_for("x/#")
    assert message.payload == b"y"


def test_a_connection_left_open_is_reported(mqtt_broker):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "leaky")
    client.connect(*mqtt_broker.address)
    client.loop_start()
    mqtt_broker.wait_for_client("leaky")
    client.loop_stop()  # its socket stays open: the application forgot to disconnect
'''


def test_the_fixtures_in_a_users_test_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=USERS_TESTS)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W",
                                           "always::mqlite.testing.pytest_plugin."
                                           "LeakedConnectionWarning")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*LeakedConnectionWarning: 1 client(s) still connected when "
                                 "the test ended: 'leaky'*"])
