"""The mqlite broker: a single-process MQTT 3.1.1/5.0 broker on ``selectors``."""

from .bridge_config import BridgeConfig, BridgeTLS, BridgeTopic
from .cluster_config import ClusterConfig
from .config import BrokerConfig
from .hooks import Access, ClientInfo, Hook
from .listener_config import ListenerConfig
from .message import Message
from .server import Broker
from .sqlite_inspect import read_session, read_sessions
from .sqlite_store import SQLiteStore
from .store import MemoryStore, SessionStore, StoreError, StoreWriteError

__all__ = ["Access", "BridgeConfig", "BridgeTLS", "BridgeTopic", "Broker", "BrokerConfig",
           "ClientInfo", "ClusterConfig", "Hook", "ListenerConfig", "MemoryStore", "Message",
           "SQLiteStore", "SessionStore", "StoreError", "StoreWriteError", "read_session",
           "read_sessions"]
