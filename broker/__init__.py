"""The mqlite broker: a single-process MQTT 3.1.1/5.0 broker on ``selectors``."""

from .config import BrokerConfig
from .server import Broker
from .store import MemoryStore, SessionStore

__all__ = ["Broker", "BrokerConfig", "MemoryStore", "SessionStore"]
