"""Sockets: the selectors loop that drives every one of them, the listeners, TLS handshakes a
step at a time, WebSocket framing, and the in-process link a bridge's local side uses."""
