"""The mqlite broker: a single-process MQTT 3.1.1/5.0 broker on ``selectors``."""

from .config import BrokerConfig
from .hooks import Access, ClientInfo, Hook
from .message import Message
from .server import Broker
from .sqlite_inspect import read_session, read_sessions
from .sqlite_store import SQLiteStore
from .store import MemoryStore, SessionStore, StoreError, StoreWriteError

__all__ = ["Access", "Broker", "BrokerConfig", "ClientInfo", "Hook", "MemoryStore", "Message",
           "SQLiteStore", "SessionStore", "StoreError", "StoreWriteError", "read_session",
           "read_sessions"]
