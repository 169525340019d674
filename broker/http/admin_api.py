"""The http listener's endpoints: ``/metrics``, ``/health``, the JSON admin API under
``/api/v1/`` and the status page at ``/``. Every request is answered on the broker's loop, from
its live state; a change (a disconnect, a deletion) is journaled like any other, and the answer
goes out after the turn's commit, so a 200 for a deletion means it is on disk.

Access: with ``admin_token`` set, everything but ``/``, ``/metrics`` and ``/health`` needs
``Authorization: Bearer TOKEN`` (compared in constant time); without it, a request that
changes state is refused unless the listener is on a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from heapq import nsmallest
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mqlite.protocol import InvalidTopic, ReasonCode, topic_matches_filter, validate_topic_filter

from ..engine.connection import VERSION_NAMES
from ..engine.reporting import ReportError
from ..engine.services import BrokerServices
from ..engine.session import Session
from ..engine.stored_queue import peek
from .connection import Request, Response
from .metrics import RunningBroker, exposition, snapshot

log = logging.getLogger("mqlite.broker")

API = "/api/v1/"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
JSON = "application/json"


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Call:
    """One request, parsed."""

    method: str
    path: str
    query: dict[str, str]
    broker: RunningBroker
    now: float


def _json(status: int, value: Any) -> Response:
    return Response(status, JSON, json.dumps(value, separators=(",", ":")).encode())


def handle(broker: RunningBroker, request: Request, listener_host: str,
           token: str | None) -> Response:
    """The response to ``request``; errors as JSON ``{"error": ...}``."""
    split = urlsplit(request.target)
    path = split.path
    query = {key: values[-1] for key, values in parse_qs(split.query).items()}
    try:
        changes = request.method in ("POST", "DELETE", "PUT", "PATCH")
        if path not in ("/", "/metrics", "/health"):
            _authorize(request, token, changes, listener_host)
        call = Call(request.method, path, query, broker, broker.core.clock.monotonic())
        return _route(call)
    except HttpError as error:
        headers: tuple[tuple[str, str], ...] = ()
        if error.status == 401:
            headers = (("WWW-Authenticate", 'Bearer realm="mqlite"'),)
        body = json.dumps({"error": str(error)}).encode()
        return Response(error.status, JSON, body, headers)


def _authorize(request: Request, token: str | None, changes: bool, host: str) -> None:
    if token is None:
        if changes and not _loopback(host):
            raise HttpError(403, "set admin_token to change state through a listener that is "
                                 "not on a loopback address")
        return
    given = request.headers.get("authorization", "")
    scheme, _, credential = given.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise HttpError(401, "an Authorization: Bearer token is needed")
    if not hmac.compare_digest(credential.strip().encode(), token.encode()):
        raise HttpError(403, "wrong token")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _route(call: Call) -> Response:
    path = call.path
    if path == "/":
        _method(call, "GET")
        return Response(200, "text/html; charset=utf-8", _status_page(), (
            ("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; "
                                        "script-src 'unsafe-inline'; frame-ancestors 'none'"),))
    if path == "/metrics":
        _method(call, "GET")
        return Response(200, PROMETHEUS, exposition(call.broker).encode())
    if path == "/health":
        _method(call, "GET")
        why = call.broker.health()
        return _json(503, {"status": "failing", "reason": why}) if why else \
            _json(200, {"status": "ok"})
    if not path.startswith(API):
        raise HttpError(404, f"no such endpoint: {path}")
    parts = [unquote(part) for part in path[len(API):].split("/")]
    head, rest = parts[0], parts[1:]
    if head == "stats" and not rest:
        _method(call, "GET")
        return _json(200, snapshot(call.broker))
    if head == "clients":
        return _clients(call, rest)
    if head == "sessions":
        return _sessions(call, rest)
    reporter = next((r for r in call.broker.core.reporters if r.name == head), None)
    if reporter is not None:  # a plug-in's pages (bridges, cluster)
        _method(call, "GET")
        try:
            answer = reporter.route(rest, call.query)
        except ReportError as exc:
            raise HttpError(exc.status, str(exc)) from None
        if answer is None:
            raise HttpError(404, f"no such endpoint: {path}")
        return _json(200, answer)
    if head in _ABSENT:
        raise HttpError(404, _ABSENT[head])
    if head == "subscriptions" and not rest:
        _method(call, "GET")
        return _json(200, _subscriptions(call))
    if head == "retained":
        # The topic is the rest of the path (it has slashes of its own), percent-decoded.
        topic = unquote(path[len(API) + len("retained/"):]) if rest else ""
        return _retained(call, topic)
    raise HttpError(404, f"no such endpoint: {path}")


def _method(call: Call, *allowed: str) -> None:
    if call.method not in allowed:
        raise HttpError(405, f"{call.method} is not allowed here (only {', '.join(allowed)})")


def _page(call: Call, keys: Iterable[str]) -> tuple[list[str], str | None]:
    """A page of ``keys`` in sorted order after ``after``; and the cursor for the next page.
    O(n log limit) time and O(limit) memory however many keys there are."""
    try:
        limit = int(call.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise HttpError(400, "limit must be a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise HttpError(400, f"limit must be from 1 to {MAX_LIMIT}")
    after = call.query.get("after")
    if after is not None:
        keys = (key for key in keys if key > after)
    page = nsmallest(limit + 1, keys)
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1] if more else None)


def _session(call: Call, client_id: str) -> Session:
    session = call.broker.core.sessions.get(client_id)
    if session is None:
        raise HttpError(404, f"no session for client id {client_id!r}")
    return session


# -- clients -----------------------------------------------------------------------------

def _client_view(session: Session) -> dict[str, Any]:
    conn = session.connection
    assert conn is not None
    info = session.client_info
    return {
        "id": session.client_id,
        "listener": conn.listener,
        "peer": conn.peer,
        "protocol": VERSION_NAMES.get(conn.version, str(conn.version)),
        "keepalive": conn.keepalive,
        "connected_since": session.connected_at,
        "username": info.username if info is not None else None,
        "inflight": len(session.inflight),
        "queued": session.queued,
    }


def _clients(call: Call, rest: list[str]) -> Response:
    sessions = call.broker.core.sessions.by_id
    if not rest:
        _method(call, "GET")
        ids, cursor = _page(call, (client_id for client_id, session in sessions.items()
                                   if session.connection is not None))
        return _json(200, {"clients": [_client_view(sessions[i]) for i in ids],
                           "next": cursor})
    client_id = rest[0]
    session = sessions.get(client_id)
    if session is None or session.connection is None:
        raise HttpError(404, f"no client {client_id!r} is connected")
    if rest[1:] == []:
        _method(call, "GET")
        return _json(200, _client_view(session))
    if rest[1:] == ["disconnect"]:
        _method(call, "POST")
        call.broker.core.drop(session.connection, "disconnected by the admin API",
                              ReasonCode.ADMINISTRATIVE_ACTION)
        log.info("client %s disconnected through the admin API", client_id)
        return _json(200, {"disconnected": client_id})
    raise HttpError(404, f"no such endpoint: {call.path}")


# -- sessions ----------------------------------------------------------------------------

def _session_view(core: BrokerServices, session: Session, now: float, detail: bool
                  ) -> dict[str, Any]:
    head = list(peek(core, session, 10 if detail else 1))
    oldest = head[0].message.received_at if head else 0.0
    view: dict[str, Any] = {
        "id": session.client_id,
        "online": session.connection is not None,
        "protocol": VERSION_NAMES.get(session.protocol_version),
        "expiry_interval": session.expiry_interval,
        "disconnected_at": session.disconnected_at,
        "subscriptions": len(session.subscriptions),
        "inflight": len(session.inflight),
        "queued": session.queued,
        "queued_bytes": session.queued_bytes,
        # None: empty, or queued before this broker process started.
        "oldest_queued_age": round(now - oldest, 3) if oldest else None,
    }
    if detail:
        view["subscriptions"] = {topic_filter: {"qos": options.qos,
                                                "no_local": options.no_local,
                                                "retain_as_published":
                                                    options.retain_as_published}
                                 for topic_filter, options in session.subscriptions.items()}
        view["queue_head"] = [{"topic": d.message.topic, "qos": d.qos,
                               "bytes": len(d.message.payload)}
                              for d in head]
    return view


# A plug-in's path when the plug-in is not there: what the 404 says.
_ABSENT = {"cluster": "this broker is not in cluster mode", "bridges": "no bridges"}


def _sessions(call: Call, rest: list[str]) -> Response:
    core = call.broker.core
    sessions = core.sessions.by_id
    if not rest:
        _method(call, "GET")
        ids, cursor = _page(call, sessions)
        return _json(200, {"sessions": [_session_view(core, sessions[i], call.now, False)
                                        for i in ids], "next": cursor})
    if len(rest) != 1:
        raise HttpError(404, f"no such endpoint: {call.path}")
    session = _session(call, rest[0])
    if call.method == "GET":
        return _json(200, _session_view(core, session, call.now, True))
    _method(call, "GET", "DELETE")
    delete_session(core, session)
    return _json(200, {"deleted": session.client_id})


def delete_session(core: Any, session: Session) -> None:
    """Kick the client if connected (no will: the operator ended it), then end the session,
    promised: the answer waits for the commit that makes it durable."""
    conn = session.connection
    if conn is not None:
        conn.publish_will = False
        session.will = None
        core.drop(conn, "session deleted by the admin API", ReasonCode.ADMINISTRATIVE_ACTION)
    core.sessions.end(session, promise=True)
    log.info("session %s deleted through the admin API", session.client_id)


# -- subscriptions and retained messages --------------------------------------------------

def _filter(call: Call) -> str | None:
    topic_filter = call.query.get("filter")
    if topic_filter is not None:
        try:
            validate_topic_filter(topic_filter)
        except InvalidTopic as exc:
            raise HttpError(400, f"bad filter {topic_filter!r}: {exc}") from None
    return topic_filter


def _subscriptions(call: Call) -> dict[str, Any]:
    """Subscriptions whose filter, read as a topic, the query's ``filter`` matches."""
    topic_filter = _filter(call)
    sessions = call.broker.core.sessions.by_id
    keys = (f"{client_id}\0{subscribed}" for client_id, session in sessions.items()
            for subscribed in session.subscriptions
            if topic_filter is None or topic_matches_filter(topic_filter, subscribed))
    page, cursor = _page(call, keys)
    rows = []
    for key in page:
        client_id, subscribed = key.split("\0", 1)
        options = sessions[client_id].subscriptions[subscribed]
        rows.append({"client_id": client_id, "filter": subscribed, "qos": options.qos})
    return {"subscriptions": rows, "next": cursor}


def _retained(call: Call, topic: str) -> Response:
    retained = call.broker.core.retained
    if topic:
        _method(call, "DELETE")
        if not retained.delete(topic):
            raise HttpError(404, f"no retained message on {topic!r}")
        call.broker.core.journal.retained_deleted(topic, promise=True)
        return _json(200, {"deleted": topic})
    _method(call, "GET")
    messages = {message.topic: message
                for message in retained.matching(_filter(call) or "#", call.now)}
    page, cursor = _page(call, messages)
    return _json(200, {"retained": [{"topic": t, "qos": messages[t].qos,
                                     "bytes": len(messages[t].payload)} for t in page],
                       "next": cursor})


_PAGE: list[bytes] = []


def _status_page() -> bytes:
    if not _PAGE:
        _PAGE.append(files("mqlite.broker.http").joinpath("status_page.html").read_bytes())
    return _PAGE[0]

