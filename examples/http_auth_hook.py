"""Authenticate clients against an HTTP service, as EMQX's and mosquitto-go-auth's HTTP
backends do: the broker POSTs the client's credentials as JSON and lets it in on a 200.

    python examples/http_auth_hook.py

Starts a small user service (stdlib http.server, one user "sensor" / "s3cret") and a broker with
the hook, then shows a wrong password refused, the right one accepted, and a reconnect answered
from the hook's cache without asking the service again.

The call may take as long as the service does, so the hook says ``blocking = True``: the broker
calls it on a worker thread and serves its other clients meanwhile. ``quick_answer`` runs on the
broker's thread first and answers from a short-lived cache of successes, so a reconnecting
client costs no request. Passwords are never logged; the cache keeps only a hash of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mqlite.client as mqtt
from mqlite.broker import Broker, ClientInfo, Hook


class HttpAuthentication(Hook):
    """POST {"username", "password", "clientid", "peer"} to ``url``: 200 lets the client in,
    anything else (or no answer within ``timeout``) refuses it."""

    blocking = True

    def __init__(self, url: str, timeout: float = 2.0, cache_seconds: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        # (username, SHA-256 of the password) -> when the service last said yes
        self._accepted: dict[tuple[str, bytes], float] = {}
        self.requests = 0

    def quick_answer(self, client: ClientInfo, username: str | None,
                     password: bytes | None) -> bool | None:
        if username is None or password is None:
            return False  # this service knows only users with passwords
        accepted = self._accepted.get((username, hashlib.sha256(password).digest()))
        if accepted is not None and time.monotonic() - accepted < self.cache_seconds:
            return True
        return None  # ask the service, on a worker thread

    def on_connect_authenticate(self, client: ClientInfo, username: str | None,
                                password: bytes | None) -> bool:
        if username is None or password is None:
            return False
        body = json.dumps({"username": username, "password": password.decode("utf-8", "replace"),
                           "clientid": client.client_id, "peer": client.peer}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                allowed = response.status == 200
        except (urllib.error.URLError, TimeoutError):
            return False  # refused (HTTPError is a URLError too) or the service is down
        if allowed:
            key = (username, hashlib.sha256(password).digest())
            self._accepted[key] = time.monotonic()  # a dict store: safe from a worker thread
        return allowed


USERS = {"sensor": b"s3cret"}


class UserService(BaseHTTPRequestHandler):
    """The service side, for the demonstration: 200 for a known user and password."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        expected = USERS.get(request.get("username", ""))
        given = str(request.get("password", "")).encode()
        ok = expected is not None and hmac.compare_digest(expected, given)
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet, and a request line would be the only thing logged


def connect(port: int, client_id: str, password: str) -> str:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set("sensor", password)
    result: list[str] = []
    done = threading.Event()
    client.on_connect = lambda c, u, flags, rc, props: (result.append(str(rc)), done.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not done.wait(10):
        raise SystemExit("no CONNACK")
    client.disconnect()
    client.loop_stop()
    return result[0]


def main() -> None:
    service = ThreadingHTTPServer(("127.0.0.1", 0), UserService)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    hook = HttpAuthentication(f"http://127.0.0.1:{service.server_address[1]}/auth")
    with Broker("127.0.0.1", 0, hooks=[hook]) as broker:
        port = broker.address[1]
        print(f"wrong password: {connect(port, 'intruder', 'guess')}")
        print(f"right password: {connect(port, 'kitchen', 's3cret')}")
        print(f"reconnect: {connect(port, 'kitchen', 's3cret')}")
        print(f"requests to the service: {hook.requests}")
    service.shutdown()


if __name__ == "__main__":
    main()
