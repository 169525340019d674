"""The mqlite broker (built on :mod:`mqlite.protocol`)."""
