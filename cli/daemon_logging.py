"""Where the daemon's log goes (stderr, stdout, a file, syslog) and in which form (text, or
JSON: one object a line). A log file is reopened by ``reopen()``, on SIGHUP, for logrotate."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from typing import Any, Protocol

TEXT_FORMAT = "%(asctime)s %(levelname)s %(node_tag)s%(name)s: %(message)s"
# Fields a log call may pass with ``extra=``; the JSON form gives them keys of their own.
EXTRA_FIELDS = ("event", "client_id", "listener", "peer")


class _Settings(Protocol):
    log_level: str
    log_dest: str
    log_file: str | None
    log_format: str
    connection_messages: bool

    @property
    def node_id(self) -> str | None:
        """Cluster mode: the node's name, on every line (the workers of a host share a log)."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        node = getattr(record, "node", None)
        if node is not None:
            entry["node"] = node
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _NodeTag(logging.Filter):
    """Cluster mode: "[node] " before the logger's name, and "node" in JSON."""

    def __init__(self, node: str | None) -> None:
        super().__init__()
        self.node = node
        self.tag = f"[{node}] " if node else ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.node_tag = self.tag
        if self.node is not None:
            record.node = self.node
        return True


def _without_connection_messages(record: logging.LogRecord) -> bool:
    """connection_messages = false: no line per client connecting and disconnecting."""
    return getattr(record, "event", None) not in ("connect", "disconnect")


def destinations(log_dest: str) -> list[str]:
    """``log_dest`` names one destination or several, joined by commas ("file,stdout")."""
    return [dest.strip() for dest in log_dest.split(",") if dest.strip()]


def _handler(settings: _Settings, dest: str) -> logging.Handler:
    if dest == "file":
        assert settings.log_file is not None
        # A private file: logs name clients and addresses. WatchedFileHandler reopens it when
        # logrotate moves it away; reopen() does so on SIGHUP too.
        os.close(os.open(settings.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        return logging.handlers.WatchedFileHandler(settings.log_file, encoding="utf-8")
    if dest == "syslog":
        address = "/dev/log" if os.path.exists("/dev/log") else ("localhost", 514)
        handler: logging.Handler = logging.handlers.SysLogHandler(address=address)
        return handler
    return logging.StreamHandler(sys.stdout if dest == "stdout" else sys.stderr)


def configure_logging(settings: _Settings, topic: logging.Handler | None = None) -> None:
    """Replace the root logger's handlers with those the settings name (each destination of
    ``log_dest``; none for "none"). ``topic``: the handler of ``log_dest topic`` (it needs
    the broker, which exists later). OSError if a log file cannot be opened."""
    handlers = []
    for dest in destinations(settings.log_dest):
        if dest == "none":
            continue
        if dest == "topic":
            if topic is None:
                continue
            handler = topic
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        else:
            handler = _handler(settings, dest)
            if settings.log_format == "json":
                handler.setFormatter(JsonFormatter())
            elif dest == "syslog":
                handler.setFormatter(logging.Formatter(
                    "mqlite: %(levelname)s %(node_tag)s%(name)s: %(message)s"))
            else:
                handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        handler.filters.clear()
        handler.addFilter(_NodeTag(settings.node_id))
        if not settings.connection_messages:
            handler.addFilter(_without_connection_messages)
        handlers.append(handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if old is not topic:
            old.close()
    if not handlers:  # log_dest none: nowhere (not even Python's last-resort stderr)
        handlers.append(logging.NullHandler())
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def reopen() -> None:
    """Reopen log files (after logrotate moved them)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()
