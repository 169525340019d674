"""mqlite's sans-IO MQTT 3.1.1 and 5.0 core, shared by the broker and the client.

It never touches sockets, threads or files: bytes and time come in as arguments.
"""

from .decoder import decode_packet
from .encoder import (
    encode,
    encode_puback_success,
    encode_publish,
    encode_publish_fields,
    encode_within,
)
from .errors import (
    InvalidTopic,
    MalformedPacket,
    MQTTError,
    PacketIdsExhausted,
    PacketTooLarge,
    ProtocolError,
    UnsupportedProtocolVersion,
)
from .framing import PROTOCOL_MAX_PACKET_SIZE, PacketReader, decode
from .packet_ids import PacketIdAllocator
from .packet_types import MQTT_3_1, MQTT_3_1_1, MQTT_5, PacketType, ProtocolVersion
from .packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
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
from .properties import EMPTY_PROPERTIES, PROPERTY_SPECS, Properties, PropertyType
from .reason_codes import ConnackReturnCode, ReasonCode
from .topic_trie import TopicTrie
from .topics import (
    DEFAULT_MAX_TOPIC_LEVELS,
    SharedSubscription,
    parse_shared_subscription,
    topic_matches_filter,
    validate_topic_filter,
    validate_topic_name,
)

__all__ = [
    "DEFAULT_MAX_TOPIC_LEVELS", "EMPTY_PROPERTIES", "MQTT_3_1", "MQTT_3_1_1", "MQTT_5",
    "PROPERTY_SPECS", "PROTOCOL_MAX_PACKET_SIZE", "Auth", "Connack", "ConnackReturnCode",
    "Connect", "Disconnect", "InvalidTopic", "MQTTError", "MalformedPacket", "Packet",
    "PacketIdAllocator", "PacketIdsExhausted", "PacketReader", "PacketTooLarge", "PacketType",
    "Pingreq", "Pingresp", "Properties", "PropertyType", "ProtocolError", "ProtocolVersion",
    "Puback", "Pubcomp", "Publish", "Pubrec", "Pubrel", "ReasonCode", "SharedSubscription",
    "Suback", "Subscribe", "Subscription", "TopicTrie", "Unsuback", "Unsubscribe",
    "UnsupportedProtocolVersion", "Will", "decode", "decode_packet", "encode",
    "encode_puback_success", "encode_publish", "encode_publish_fields", "encode_within",
    "parse_shared_subscription", "topic_matches_filter", "validate_topic_filter",
    "validate_topic_name",
]
