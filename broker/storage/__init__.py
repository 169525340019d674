"""Persistent sessions and retained messages in SQLite: the store, its read-only inspection,
and the lock that keeps one broker per database."""
