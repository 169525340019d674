"""Bridges to other MQTT brokers: a remote side (the client library) and an in-process local
side, with QoS 2 carried through exactly once."""
