"""mqlite's MQTT client: paho-mqtt 2.x's API (callback API VERSION2), so a paho program ports by
changing ``import paho.mqtt.client as mqtt`` to ``import mqlite.client as mqtt``.

See the README's client section for the external-loop contract, the built-in loops, the
asyncio API (:mod:`mqlite.client.aio`) and the durable outbox.
"""

from importlib.metadata import version as _version

from .client import Client
from .constants import *  # noqa: F403  (paho exports these names from its client module)
from .constants import (
    CONNACK_ACCEPTED,
    MQTT_CLEAN_START_FIRST_ONLY,
    MQTT_ERR_SUCCESS,
    CallbackAPIVersion,
    ConnackCode,
    LogLevel,
    MQTTErrorCode,
    MQTTProtocolVersion,
    MQTTv5,
    MQTTv31,
    MQTTv311,
    connack_string,
    error_string,
)
from .message import MQTTMessage, MQTTMessageInfo
from .mqtt5_types import (
    ConnectFlags,
    DisconnectFlags,
    PacketTypes,
    Properties,
    ReasonCode,
    SubscribeOptions,
)
from .outbox import OutboxError
from .paho_names import *  # noqa: F403  (paho's typing aliases, error types, conversions)
from .payloads import MSGPACK_CONTENT_TYPE
from .reasoncodes import ReasonCodes
from .settings import payload_bytes, topic_matches_sub

__version__ = _version("mqlite")

__all__ = [  # and the names of .constants and .paho_names, as paho's client module has them
    "CONNACK_ACCEPTED", "MQTT_CLEAN_START_FIRST_ONLY", "MQTT_ERR_SUCCESS", "MSGPACK_CONTENT_TYPE",
    "CallbackAPIVersion", "Client", "ConnackCode", "ConnectFlags", "DisconnectFlags", "LogLevel",
    "MQTTErrorCode", "MQTTMessage", "MQTTMessageInfo", "MQTTProtocolVersion", "MQTTv5",
    "MQTTv31", "MQTTv311", "OutboxError", "PacketTypes", "Properties", "ReasonCode", "ReasonCodes",
    "SubscribeOptions", "connack_string", "error_string", "payload_bytes", "topic_matches_sub",
]
