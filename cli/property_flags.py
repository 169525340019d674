"""``-D command identifier value``: MQTT 5 properties given on the command line, as
mosquitto_pub / _sub / _rr take them (``-D publish user-property key value``,
``-D connect session-expiry-interval 60``)."""

from __future__ import annotations

import mqlite.client as mqtt

COMMANDS = {"connect": mqtt.PacketTypes.CONNECT, "publish": mqtt.PacketTypes.PUBLISH,
            "subscribe": mqtt.PacketTypes.SUBSCRIBE,
            "unsubscribe": mqtt.PacketTypes.UNSUBSCRIBE,
            "disconnect": mqtt.PacketTypes.DISCONNECT, "will": mqtt.PacketTypes.WILLMESSAGE,
            "auth": mqtt.PacketTypes.AUTH}
_TEXT = {"content-type", "response-topic", "reason-string", "response-information",
         "server-reference", "authentication-method", "assigned-client-identifier"}
_BINARY = {"correlation-data", "authentication-data"}


class PropertyError(ValueError):
    pass


def parse(given: list[list[str]] | None) -> dict[str, mqtt.Properties]:
    """Each ``-D`` as the properties of its command (the packet it goes in)."""
    properties: dict[str, mqtt.Properties] = {}
    for values in given or []:
        if len(values) < 3:
            raise PropertyError("-D needs a command, a property and its value")
        command, identifier, *rest = values
        packet_type = COMMANDS.get(command.lower())
        if packet_type is None:
            raise PropertyError(f"Invalid command {command} given in -D")
        target = properties.setdefault(command.lower(), mqtt.Properties(packet_type))
        name = "".join(part.capitalize() for part in identifier.lower().split("-"))
        try:
            if identifier == "user-property":
                if len(rest) != 2:
                    raise PropertyError("user-property needs a key and a value")
                target.UserProperty = (rest[0], rest[1])
                continue
            if len(rest) != 1:
                raise PropertyError(f"-D {command} {identifier} takes one value")
            value: object = rest[0]
            if identifier in _BINARY:
                value = rest[0].encode()
            elif identifier not in _TEXT:
                value = int(rest[0])
            setattr(target, name, value)
        except (AttributeError, ValueError) as exc:
            if isinstance(exc, PropertyError):
                raise
            raise PropertyError(f"Invalid property {identifier} for {command}: "
                                f"{exc}") from None
    return properties
