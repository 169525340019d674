"""At debug level (logger ``mqlite.broker.packets``), one line per packet in and out: its
type, the client id, packet id, topic, QoS and size. Never a payload, a password or a will's
message. Checked through one flag on the hot path, refreshed when logging is configured."""

from __future__ import annotations

import logging
from typing import Any

from mqlite.protocol import Connect, Packet, Publish, encode

log = logging.getLogger("mqlite.broker.packets")


class _Switch:
    on = False


SWITCH = _Switch()


def refresh() -> None:
    """Read the logger's level again (at start and after a reload)."""
    SWITCH.on = log.isEnabledFor(logging.DEBUG)


def fields(packet: Any) -> str:
    parts = [type(packet).__name__.upper()]
    packet_id = getattr(packet, "packet_id", None)
    if packet_id is not None:
        parts.append(f"id={packet_id}")
    if isinstance(packet, Publish):
        parts.append(f"topic={packet.topic!r} qos={packet.qos}"
                     + (" retain" if packet.retain else "") + (" dup" if packet.dup else ""))
    elif isinstance(packet, Connect):
        parts.append(f"client_id={packet.client_id!r} version={packet.protocol_version} "
                     f"clean_start={packet.clean_start} keep_alive={packet.keep_alive}"
                     + (f" username={packet.username!r}" if packet.username else ""))
    for name in ("subscriptions", "topic_filters"):
        value = getattr(packet, name, None)
        if value:
            filters = [getattr(s, "topic_filter", s) for s in value]
            parts.append(f"filters={filters!r}")
    code = getattr(packet, "reason_code", None)
    if code:
        parts.append(f"reason=0x{code:02X}")
    return " ".join(parts)


def packet_in(client_id: str | None, peer: str, packet: Packet, version: int) -> None:
    log.debug("in  %s from %s (%s): %d bytes", fields(packet), client_id or "-", peer,
              len(encode(packet, version)), extra={"event": "packet_in",
                                                    "client_id": client_id, "peer": peer})


def packet_out(client_id: str | None, peer: str, description: str, size: int) -> None:
    log.debug("out %s to %s (%s): %d bytes", description, client_id or "-", peer, size,
              extra={"event": "packet_out", "client_id": client_id, "peer": peer})
