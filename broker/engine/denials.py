"""One log line per refusal by an access check (an ACL file or a hook), as mosquitto's
"Denied PUBLISH from ..." lines, so an operator sees who was refused what. At most
``PER_SECOND`` lines a second: a client that retries in a loop cannot flood the log; what was
left out is counted in the next line that goes out."""

from __future__ import annotations

import logging
import time

from ..hooks import Access, ClientInfo

log = logging.getLogger("mqlite.broker")

PER_SECOND = 10


class DenialLog:
    __slots__ = ("_left_out", "_lines", "_second")

    def __init__(self) -> None:
        self._second = 0
        self._lines = 0
        self._left_out = 0

    def denied(self, action: str, client: ClientInfo, topic: str, access: Access) -> None:
        """``action``: what was refused ("PUBLISH", "SUBSCRIBE", "will")."""
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._lines = second, 0
        if self._lines >= PER_SECOND:
            self._left_out += 1
            return
        self._lines += 1
        more = f" ({self._left_out} more denials not logged)" if self._left_out else ""
        self._left_out = 0
        log.info("Denied %s from %s (user %s, listener %s): %s access to %r%s", action,
                 client.client_id, client.username or "(none)", client.listener, access.value,
                 topic, more, extra={"event": "denied", "client_id": client.client_id,
                                     "listener": client.listener, "peer": client.peer})
