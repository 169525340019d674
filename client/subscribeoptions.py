"""paho-mqtt's ``paho.mqtt.subscribeoptions``."""

from .exception import MQTTException
from .mqtt5_types import SubscribeOptions

__all__ = ["MQTTException", "SubscribeOptions"]
