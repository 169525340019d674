"""What the event loop drives besides MQTT connections, listeners and its own http side: a
socket that a plug-in owns (the cluster's Redis links), registered with the loop's selector
and told when it is readable or writable. The loop knows this interface only, never the
plug-in."""

from __future__ import annotations


class LoopDriven:
    """Registered with the loop's selector as its own ``data``."""

    __slots__ = ()

    def event(self, readable: bool, writable: bool) -> None:
        raise NotImplementedError
