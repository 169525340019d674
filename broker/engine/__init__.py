"""The kernel: connections' MQTT state, sessions, routing, delivery, the journal and the store
interface, the handlers per packet family, $SYS and the statistics. It names no plug-in."""
