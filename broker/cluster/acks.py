"""The entries of a node's stream delivered in this loop turn, to be acknowledged (``XACK``,
``XDEL``): in one transaction with the session writes they caused, when there are some (the
store takes them), else after the turn's commit (the node). Shared by the two, which
server.py builds with it, so that a node killed between the writes and the acknowledgement
neither loses an entry nor has it delivered twice."""

from __future__ import annotations


class StreamAcks:
    __slots__ = ("entries", "readable", "stream")

    def __init__(self) -> None:
        self.stream = ""  # the node's stream (its key), set by the node
        self.entries: list[bytes] = []
        # The link that read them is up and registered; else they are read again from the
        # stream and not acknowledged.
        self.readable = False

    def take(self) -> tuple[str, list[bytes]] | None:
        """The stream and the entries to acknowledge now, if any (they are then the
        taker's)."""
        if not self.entries or not self.readable:
            return None
        entries, self.entries = self.entries, []
        return self.stream, entries
