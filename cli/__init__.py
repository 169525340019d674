"""The ``mqlite`` command line: the one place that puts broker and client together."""
