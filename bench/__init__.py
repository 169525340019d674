"""mqlite's benchmarks: run them from the repository root with ``python -m bench.NAME``."""
