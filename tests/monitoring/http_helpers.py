"""Requests to a broker's http listener over real sockets (http.client)."""

from __future__ import annotations

import http.client
import json
from typing import Any

from mqlite.broker import Broker
from mqlite.broker.config.listener_config import ListenerConfig

LISTENERS = [ListenerConfig(port=0, name="tcp"), ListenerConfig(type="http", port=0,
                                                                name="http")]


def start(**settings: Any) -> Broker:
    settings.setdefault("listeners", LISTENERS)
    settings.setdefault("sys_interval", 0)
    broker = Broker(**settings)
    broker.start()
    return broker


def http_address(broker: Broker) -> tuple[str, int]:
    """The http listener's address (named "http" here, or "http:PORT" by default)."""
    return next(address for name, address in broker.addresses.items()
                if name.startswith("http"))


def request(broker: Broker, method: str, path: str, token: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    port = http_address(broker)[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, headers=sent)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        connection.close()


def get_json(broker: Broker, path: str, token: str | None = None,
             method: str = "GET") -> tuple[int, Any]:
    status, _, body = request(broker, method, path, token)
    return status, json.loads(body)
