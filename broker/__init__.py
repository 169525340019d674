"""The mqlite broker: a single-process MQTT 3.1.1/5.0 broker on ``selectors``."""

from .bridge.config import BridgeConfig, BridgeTLS, BridgeTopic
from .cluster.config import ClusterConfig
from .config.broker_config import BrokerConfig
from .config.listener_config import ListenerConfig
from .engine.store import MemoryStore, SessionStore, StoreError, StoreWriteError
from .hooks import Access, ClientInfo, Hook
from .message import Message
from .server import Broker
from .storage.sqlite_inspect import read_session, read_sessions
from .storage.sqlite_store import SQLiteStore

__all__ = ["Access", "BridgeConfig", "BridgeTLS", "BridgeTopic", "Broker", "BrokerConfig",
           "ClientInfo", "ClusterConfig", "Hook", "ListenerConfig", "MemoryStore", "Message",
           "SQLiteStore", "SessionStore", "StoreError", "StoreWriteError", "read_session",
           "read_sessions"]
