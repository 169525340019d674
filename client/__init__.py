"""The mqlite client library (built on :mod:`mqlite.protocol`)."""
