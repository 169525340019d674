"""Hypothesis strategies for every packet type, valid for the protocol level they are drawn for."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from mqlite.protocol import (
    PROPERTY_SPECS,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    PropertyType,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from mqlite.protocol.reason_codes import (
    AUTH_REASON_CODES,
    CONNACK_REASON_CODES,
    DISCONNECT_REASON_CODES,
    PUBACK_REASON_CODES,
    PUBREL_REASON_CODES,
    SUBACK_REASON_CODES,
    SUBACK_RETURN_CODES_V3,
    UNSUBACK_REASON_CODES,
)

# Well-formed UTF-8 without U+0000: what the spec allows in a string.
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
topic_level = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00/+#"), max_size=6
)
topic_names = st.lists(topic_level, min_size=1, max_size=5).map("/".join).filter(bool)
topic_filters = text.filter(lambda f: bool(f))
binary = st.binary(max_size=16)

_NONZERO = {"receive_maximum", "maximum_packet_size", "topic_alias"}


def _value(name: str, kind: PropertyType) -> st.SearchStrategy[Any]:
    low = 1 if name in _NONZERO else 0
    if kind is PropertyType.BYTE:
        return st.integers(0, 1)
    if kind is PropertyType.UINT16:
        return st.integers(low, 0xFFFF)
    if kind is PropertyType.UINT32:
        return st.integers(low, 0xFFFF_FFFF)
    if kind is PropertyType.VBI:
        return st.integers(1, 268_435_455)
    if kind is PropertyType.UTF8:
        return text
    if kind is PropertyType.BINARY:
        return binary
    return st.tuples(text, text)


def properties(packet_type: PacketType) -> st.SearchStrategy[Properties]:
    """Any set of the properties ``packet_type`` may carry, repeats where allowed."""
    options: dict[str, st.SearchStrategy[Any]] = {}
    for spec in PROPERTY_SPECS:
        if packet_type not in spec.packets:
            continue
        value = _value(spec.name, spec.type)
        if spec.type is PropertyType.UTF8_PAIR or spec.name == "subscription_identifier":
            most = 3 if packet_type in spec.repeatable_in else 1
            options[spec.name] = st.lists(value, min_size=1, max_size=most).map(tuple)
        else:
            options[spec.name] = value
    return st.fixed_dictionaries({}, optional=options).map(lambda kw: Properties(**kw))


def _props(version: int, packet_type: PacketType) -> st.SearchStrategy[Properties]:
    return properties(packet_type) if version == 5 else st.just(Properties())


@st.composite
def connects(draw: st.DrawFn, version: int) -> Connect:
    will = None
    if draw(st.booleans()):
        will = Will(topic=draw(topic_names), payload=draw(binary), qos=draw(st.integers(0, 2)),
                    retain=draw(st.booleans()), properties=draw(_props(version, PacketType.WILL)))
    username = draw(st.none() | text)
    password = draw(st.none() | binary)
    if version < 5 and username is None:
        password = None
    return Connect(
        client_id=draw(text), protocol_version=version, clean_start=draw(st.booleans()),
        keep_alive=draw(st.integers(0, 0xFFFF)), will=will, username=username,
        password=password, properties=draw(_props(version, PacketType.CONNECT)),
    )


@st.composite
def connacks(draw: st.DrawFn, version: int) -> Connack:
    codes = sorted(CONNACK_REASON_CODES) if version == 5 else list(range(6))
    code = draw(st.sampled_from(codes))
    return Connack(session_present=draw(st.booleans()) and code == 0, reason_code=code,
                   properties=draw(_props(version, PacketType.CONNACK)))


@st.composite
def publishes(draw: st.DrawFn, version: int) -> Publish:
    qos = draw(st.integers(0, 2))
    props = draw(_props(version, PacketType.PUBLISH))
    topic = draw(topic_names)
    if version == 5 and props.topic_alias is not None and draw(st.booleans()):
        topic = ""
    return Publish(topic=topic, payload=draw(st.binary(max_size=64)), qos=qos,
                   retain=draw(st.booleans()), dup=bool(qos) and draw(st.booleans()),
                   packet_id=draw(st.integers(1, 0xFFFF)) if qos else None, properties=props)


def _acks(cls: type[Puback | Pubrec | Pubrel | Pubcomp], packet_type: PacketType,
          codes: frozenset[int], version: int) -> st.SearchStrategy[Packet]:
    if version < 5:
        return st.builds(cls, packet_id=st.integers(1, 0xFFFF))
    return st.builds(cls, packet_id=st.integers(1, 0xFFFF), reason_code=st.sampled_from(
        sorted(codes)), properties=properties(packet_type))


@st.composite
def subscriptions(draw: st.DrawFn, version: int) -> Subscription:
    topic_filter = draw(topic_filters)
    if version < 5:
        return Subscription(topic_filter=topic_filter, qos=draw(st.integers(0, 2)))
    return Subscription(
        topic_filter=topic_filter, qos=draw(st.integers(0, 2)),
        no_local=draw(st.booleans()) and not topic_filter.startswith("$share/"),
        retain_as_published=draw(st.booleans()), retain_handling=draw(st.integers(0, 2)),
    )


def packet_strategies(version: int) -> dict[str, st.SearchStrategy[Any]]:
    """A strategy per packet type valid at protocol level ``version`` (3, 4 or 5)."""
    wire = 4 if version == 3 else version
    suback_codes = sorted(SUBACK_REASON_CODES if wire == 5 else SUBACK_RETURN_CODES_V3)
    ids = st.integers(1, 0xFFFF)
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "CONNECT": connects(version),
        "CONNACK": connacks(wire),
        "PUBLISH": publishes(wire),
        "PUBACK": _acks(Puback, PacketType.PUBACK, PUBACK_REASON_CODES, wire),
        "PUBREC": _acks(Pubrec, PacketType.PUBREC, PUBACK_REASON_CODES, wire),
        "PUBREL": _acks(Pubrel, PacketType.PUBREL, PUBREL_REASON_CODES, wire),
        "PUBCOMP": _acks(Pubcomp, PacketType.PUBCOMP, PUBREL_REASON_CODES, wire),
        "SUBSCRIBE": st.builds(
            Subscribe, packet_id=ids,
            subscriptions=st.lists(subscriptions(wire), min_size=1, max_size=4),
            properties=_props(wire, PacketType.SUBSCRIBE)),
        "SUBACK": st.builds(
            Suback, packet_id=ids,
            reason_codes=st.lists(st.sampled_from(suback_codes), min_size=1, max_size=4),
            properties=_props(wire, PacketType.SUBACK)),
        "UNSUBSCRIBE": st.builds(
            Unsubscribe, packet_id=ids,
            topic_filters=st.lists(topic_filters, min_size=1, max_size=4),
            properties=_props(wire, PacketType.UNSUBSCRIBE)),
        "PINGREQ": st.just(Pingreq()),
        "PINGRESP": st.just(Pingresp()),
    }
    if wire == 5:
        strategies["UNSUBACK"] = st.builds(
            Unsuback, packet_id=ids, properties=properties(PacketType.UNSUBACK),
            reason_codes=st.lists(st.sampled_from(sorted(UNSUBACK_REASON_CODES)), min_size=1,
                                  max_size=4))
        strategies["DISCONNECT"] = st.builds(
            Disconnect, reason_code=st.sampled_from(sorted(DISCONNECT_REASON_CODES)),
            properties=properties(PacketType.DISCONNECT))
        strategies["AUTH"] = st.builds(
            Auth, reason_code=st.sampled_from(sorted(AUTH_REASON_CODES)),
            properties=properties(PacketType.AUTH))
    else:
        strategies["UNSUBACK"] = st.builds(Unsuback, packet_id=ids)
        strategies["DISCONNECT"] = st.just(Disconnect())
    return strategies


def packets(version: int) -> st.SearchStrategy[Packet]:
    """Any packet valid at protocol level ``version`` (3, 4 or 5)."""
    return st.one_of(list(packet_strategies(version).values()))
