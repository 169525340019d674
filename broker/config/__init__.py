"""The broker's settings: the configuration types, mqlite's TOML and mosquitto.conf."""
