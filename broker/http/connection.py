"""One HTTP/1.1 connection of an http listener, sans-IO on h11: the event loop feeds it the
bytes it reads and writes the bytes it gives back. Keep-alive and pipelining as h11 allows;
the request line and headers are bounded in size and count, the body in size; anything else
is a 4xx answer and the connection closes after it."""

from __future__ import annotations

from typing import Any, NamedTuple

import h11

MAX_HEAD = 16 * 1024  # request line and headers
MAX_HEADERS = 64
MAX_BODY = 64 * 1024
IDLE_SECONDS = 10.0  # a request (or the next one, on a kept-alive connection) must come by then


class Request(NamedTuple):
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # names lower-cased; a repeated one keeps its last value
    body: bytes


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class HttpConnection:
    __slots__ = ("_body", "_h11", "_request", "closed", "deadline", "listener", "out", "peer",
                 "sock", "timer")

    def __init__(self, sock: Any, peer: str, listener: Any, deadline: float) -> None:
        self.sock = sock  # owned by the event loop
        self.peer = peer
        self.listener = listener  # the Listener it came in on
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._request: h11.Request | None = None
        self._body: list[bytes] = []
        self.out = bytearray()  # to write
        self.closed = False  # once ``out`` is written, close
        self.deadline = deadline
        self.timer: Any = None  # the loop's idle timer

    def receive(self, data: bytes) -> list[Request]:
        """The request complete in what came, if one is (b"": the peer closed its side)."""
        self._h11.receive_data(data)
        return self.pending()

    def pending(self) -> list[Request]:
        """The next request in what was received, if it is complete (h11 serves one at a
        time: a pipelined one comes once the one before is answered)."""
        requests: list[Request] = []
        while not self.closed:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint, f"bad request: {exc}")
                break
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.Request):
                if len(event.headers) > MAX_HEADERS:
                    self._refuse(431, f"more than {MAX_HEADERS} headers")
                    break
                # h11 bounds a head only while it is incomplete: bound the whole of it too.
                if sum(len(name) + len(value) for name, value in event.headers) > MAX_HEAD:
                    self._refuse(431, f"headers over {MAX_HEAD} bytes")
                    break
                self._request, self._body = event, []
            elif isinstance(event, h11.Data):
                self._body.append(bytes(event.data))
                if sum(map(len, self._body)) > MAX_BODY:
                    self._refuse(413, f"a body over {MAX_BODY} bytes")
                    break
            elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                request = self._request
                self._request = None
                headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                           for name, value in request.headers}
                requests.append(Request(request.method.decode("ascii"),
                                        request.target.decode("latin-1"), headers,
                                        b"".join(self._body)))
                break
            elif isinstance(event, h11.ConnectionClosed):
                self.closed = True
        return requests

    def respond(self, response: Response) -> None:
        """Queue the answer to the request ``receive`` returned last; then read on."""
        headers = [("Content-Type", response.content_type),
                   ("Content-Length", str(len(response.body))),
                   ("Cache-Control", "no-store"),
                   ("X-Content-Type-Options", "nosniff"), *response.headers]
        try:
            self.out += self._h11.send(h11.Response(status_code=response.status,
                                                    headers=headers))
            self.out += self._h11.send(h11.Data(data=response.body))
            self.out += self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self.closed = True
            return
        if self._h11.our_state is h11.MUST_CLOSE:
            self.closed = True
        elif self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()

    def _refuse(self, status: int, why: str) -> None:
        body = f"{why}\n".encode()
        try:
            self.out += self._h11.send(h11.Response(status_code=status, headers=[
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))), ("Connection", "close")]))
            self.out += self._h11.send(h11.Data(data=body))
            self.out += self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            pass  # mid-response already: just close
        self.closed = True
